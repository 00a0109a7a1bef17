//! Asking the PACS: the studies it holds for a patient (C-FIND, Study Root, study level), and one of them
//! brought here (C-MOVE with this node as the destination: the PACS sends the instances to our listener,
//! which stores them as it stores any other, so the study is ours once the move's final answer comes).
//! The study page's "对比既往" and `medgemma-x dicom find|move` both use it.

use std::time::Duration;

use anyhow::{Context, bail};
pub use app::studies::{RemoteStudy, Retrieved};

use crate::domain::DomainError;
use crate::domain::dicom::{self, peers};
use crate::domain::dicom_query::{
    self, ACCESSION_NUMBER, Attribute, INSTANCES_IN_STUDY, Key, Level, MODALITIES_IN_STUDY, PATIENT_ID, PATIENT_NAME,
    STUDY_DATE, STUDY_DESCRIPTION, STUDY_INSTANCE_UID,
};
use crate::store::db::Pool;
use crate::store::studies;
use crate::support::dimse::{self, STUDY_ROOT_FIND, STUDY_ROOT_MOVE, SubOperations, status};
use crate::support::dimse_client::{Client, PeerAddress};

/// The most matches one peer's answer is read for.
const MAX_REMOTE_MATCHES: usize = 500;
/// How long a move may go without a word from the PACS (it may send nothing until it is done).
const MOVE_SILENCE: Duration = Duration::from_secs(300);

/// What to look for; at least one key is needed (a query for everything is refused).
#[derive(Clone, Debug, Default)]
pub struct StudyKeys {
    pub patient_id: Option<String>,
    pub accession_number: Option<String>,
    /// YYYYMMDD, or a range `A-B`, `A-`, `-B`.
    pub study_date: Option<String>,
    pub study_uid: Option<String>,
}

/// The studies matching `keys` on `peer_ae`, or on every peer we may ask for priors (`--query` peers)
/// when none is named; newest first, each marked with our id when we hold it.
pub async fn find_studies(
    db: &Pool,
    our_ae: &str,
    peer_ae: Option<&str>,
    keys: &StudyKeys,
) -> Result<Vec<RemoteStudy>, DomainError> {
    let identifier = identifier(keys)?;
    let targets = match peer_ae {
        Some(ae) => vec![dicom::address_of(db, our_ae, ae).await?],
        None => {
            let queried = peers(db).await?.into_iter().filter(|p| p.may_query);
            let targets: Vec<PeerAddress> = queried.map(|peer| dicom::address(peer, our_ae)).collect();
            if targets.is_empty() {
                return Err(unavailable(
                    "没有可查询的 PACS：请用 medgemma-x dicom peer add … --query 添加",
                    "no PACS to ask: add one with `medgemma-x dicom peer add … --query`",
                ));
            }
            targets
        }
    };
    let mut found = Vec::new();
    for target in targets {
        let identifier = identifier.clone();
        let peer = target.peer_ae.clone();
        let matches = tokio::task::spawn_blocking(move || find(&target, &identifier)).await?.map_err(|e| {
            tracing::warn!(peer = %peer, error = %format!("{e:#}"), "C-FIND to a peer failed");
            unavailable(format!("向 {peer} 查询失败：{e:#}"), format!("the query to {peer} failed: {e:#}"))
        })?;
        found.extend(matches.into_iter().filter_map(|keys| remote_study(&peer, &keys)));
    }
    let uids: Vec<String> = found.iter().map(|s| s.study_uid.clone()).collect();
    let held = studies::ids_by_study_uid(db, &uids).await?;
    for study in &mut found {
        study.held = held.iter().find(|(uid, _)| *uid == study.study_uid).map(|(_, id)| *id);
    }
    found.sort_by(|a, b| b.study_date.cmp(&a.study_date).then_with(|| a.study_uid.cmp(&b.study_uid)));
    Ok(found)
}

/// The patient's studies on the PACS (every `--query` peer), found by the Patient ID of our study
/// `study_id`; the study itself is left out.
pub async fn priors_of(db: &Pool, our_ae: &str, study_id: i64) -> Result<Vec<RemoteStudy>, DomainError> {
    let study = studies::detail(db, study_id)
        .await?
        .ok_or_else(|| DomainError::not_found("没有这个检查", "No such study"))?
        .summary;
    let Some(patient_id) = study.patient_id.filter(|id| !id.trim().is_empty()) else {
        return Err(DomainError::invalid(
            "此检查没有患者 ID，无法向 PACS 查询既往检查",
            "this study has no Patient ID to ask the PACS with",
        ));
    };
    let keys = StudyKeys { patient_id: Some(patient_id), ..StudyKeys::default() };
    let mut found = find_studies(db, our_ae, None, &keys).await?;
    found.retain(|s| s.study_uid != study.study_uid);
    Ok(found)
}

/// Asks `peer_ae` to send the study to us (our AE title as the move destination: the PACS must know it,
/// with our host and DICOM port). Returns once the PACS says it is done.
pub async fn retrieve(db: &Pool, our_ae: &str, peer_ae: &str, study_uid: &str) -> Result<Retrieved, DomainError> {
    let study_uid = study_uid.trim().to_string();
    let uid_fine =
        !study_uid.is_empty() && study_uid.len() <= 64 && study_uid.chars().all(|c| c.is_ascii_digit() || c == '.');
    if !uid_fine {
        return Err(DomainError::invalid("检查实例 UID 无效", format!("`{study_uid}` is not a Study Instance UID")));
    }
    let target = dicom::address_of(db, our_ae, peer_ae).await?;
    let peer = target.peer_ae.clone();
    let uid = study_uid.clone();
    let sub_operations = tokio::task::spawn_blocking(move || move_study(&target, &uid)).await?.map_err(|e| {
        tracing::warn!(peer = %peer, error = %format!("{e:#}"), "C-MOVE from a peer failed");
        unavailable(format!("从 {peer} 调取失败：{e:#}"), format!("retrieving from {peer} failed: {e:#}"))
    })?;
    let study_id = studies::ids_by_study_uid(db, std::slice::from_ref(&study_uid)).await?.first().map(|(_, id)| *id);
    let SubOperations { completed, failed, warning, .. } = sub_operations;
    Ok(Retrieved { study_uid, completed, failed, warning, study_id })
}

fn unavailable(zh: impl Into<String>, en: impl Into<String>) -> DomainError {
    DomainError::Unavailable { zh: zh.into(), en: en.into() }
}

/// The study-level identifier: the keys given, and the ones we want back.
fn identifier(keys: &StudyKeys) -> Result<Vec<Attribute>, DomainError> {
    let given = [&keys.patient_id, &keys.accession_number, &keys.study_date, &keys.study_uid];
    if given.iter().all(|k| k.as_deref().is_none_or(|v| v.trim().is_empty())) {
        return Err(DomainError::invalid(
            "请给出患者 ID、检查号、检查日期或检查实例 UID",
            "give a patient ID, accession number, study date or Study Instance UID",
        ));
    }
    let value = |key: &Option<String>| key.as_deref().unwrap_or_default().trim().to_string();
    let wanted = [
        (STUDY_DATE, value(&keys.study_date)),
        (ACCESSION_NUMBER, value(&keys.accession_number)),
        (MODALITIES_IN_STUDY, String::new()),
        (STUDY_DESCRIPTION, String::new()),
        (PATIENT_NAME, String::new()),
        (PATIENT_ID, value(&keys.patient_id)),
        (STUDY_INSTANCE_UID, value(&keys.study_uid)),
        (INSTANCES_IN_STUDY, String::new()),
    ];
    let mut attributes =
        vec![Attribute { tag: dicom_query::QUERY_RETRIEVE_LEVEL, vr: "CS", value: Level::Study.code().into() }];
    attributes.extend(wanted.into_iter().map(|(tag, value)| Attribute {
        tag,
        vr: dicom_query::vr_of(tag).unwrap_or("LO"),
        value,
    }));
    Ok(attributes)
}

/// One C-FIND on its own association: the matches' keys.
fn find(target: &PeerAddress, identifier: &[Attribute]) -> anyhow::Result<Vec<Vec<Key>>> {
    let mut client =
        Client::connect(target, STUDY_ROOT_FIND, dimse::IDENTIFIER_TRANSFER_SYNTAXES, Duration::from_secs(60))?;
    let data_set = dimse::write_identifier(&dicom_query::data_set_of(identifier), client.transfer_syntax())
        .map_err(anyhow::Error::msg)?;
    let message_id = client.message_id();
    client.send(dimse::find_request(message_id, STUDY_ROOT_FIND), Some(&data_set))?;
    let mut matches = Vec::new();
    loop {
        let (response, data_set) = client.receive(dimse::MAX_IDENTIFIER_BYTES)?;
        let code = response.status().context("a C-FIND response without a status")?;
        if !status::is_pending(code) {
            client.release();
            if code != status::SUCCESS {
                bail!("status {code:04X}{}", response.error_comment().map(|c| format!(" ({c})")).unwrap_or_default());
            }
            return Ok(matches);
        }
        if matches.len() == MAX_REMOTE_MATCHES {
            bail!("more than {MAX_REMOTE_MATCHES} matches; narrow the query");
        }
        let data_set = data_set.context("a pending C-FIND response without its match")?;
        let object = dimse::read_identifier(&data_set, client.transfer_syntax()).map_err(anyhow::Error::msg)?;
        matches.push(dicom_query::keys_of(&object));
    }
}

/// One C-MOVE of a study to us; the final counts.
fn move_study(target: &PeerAddress, study_uid: &str) -> anyhow::Result<SubOperations> {
    let mut client = Client::connect(target, STUDY_ROOT_MOVE, dimse::IDENTIFIER_TRANSFER_SYNTAXES, MOVE_SILENCE)?;
    let identifier = [
        Attribute { tag: dicom_query::QUERY_RETRIEVE_LEVEL, vr: "CS", value: Level::Study.code().into() },
        Attribute { tag: STUDY_INSTANCE_UID, vr: "UI", value: study_uid.to_string() },
    ];
    let data_set = dimse::write_identifier(&dicom_query::data_set_of(&identifier), client.transfer_syntax())
        .map_err(anyhow::Error::msg)?;
    let message_id = client.message_id();
    client.send(dimse::move_request(message_id, STUDY_ROOT_MOVE, &target.our_ae), Some(&data_set))?;
    loop {
        // A failed move may carry the list of instances that failed: read and set aside.
        let (response, _) = client.receive(dimse::MAX_IDENTIFIER_BYTES)?;
        let code = response.status().context("a C-MOVE response without a status")?;
        if status::is_pending(code) {
            continue;
        }
        client.release();
        let counts = response.sub_operations();
        return match code {
            // Success, or a warning (some sub-operations failed): what arrived is stored.
            0x0000 | 0xB000 => Ok(counts),
            _ => bail!(
                "status {code:04X}{} ({} sent, {} failed)",
                response.error_comment().map(|c| format!(": {c}")).unwrap_or_default(),
                counts.completed,
                counts.failed
            ),
        };
    }
}

fn remote_study(peer: &str, keys: &[Key]) -> Option<RemoteStudy> {
    let value = |tag| keys.iter().find(|k| k.tag == tag).map(|k| k.value.clone()).filter(|v| !v.is_empty());
    Some(RemoteStudy {
        peer: peer.to_string(),
        study_uid: value(STUDY_INSTANCE_UID)?,
        study_date: value(STUDY_DATE),
        description: value(STUDY_DESCRIPTION),
        accession_number: value(ACCESSION_NUMBER),
        modalities: value(MODALITIES_IN_STUDY).map(|m| m.split('\\').map(str::to_string).collect()).unwrap_or_default(),
        patient_id: value(PATIENT_ID),
        patient_name: value(PATIENT_NAME),
        instances: value(INSTANCES_IN_STUDY).and_then(|n| n.trim().parse().ok()),
        held: None,
    })
}
