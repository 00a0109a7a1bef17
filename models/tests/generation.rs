//! Generation controls on the tiny checkpoint: seeds, top-k, eos, cancellation, streaming, max tokens,
//! and image preprocessing of an image that needs resizing.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use models::Engine;
use models::generate::{GenerateOptions, Generation, StopReason};
use models::prompt::{Role, Turn};
use tch::{Device, Kind, Tensor};

fn fixture() -> PathBuf {
    common::fixture("tiny-a")
}

fn engine() -> Engine {
    Engine::load(&fixture(), Device::Cpu, Kind::Float).unwrap()
}

fn run(engine: &Engine, options: GenerateOptions) -> (Generation, String) {
    let turns =
        [Turn {
            role: Role::User, text: "右肺上叶结节，边缘毛刺？".into(), images: 0, image_captions: Vec::new()
        }];
    let ids = engine.encode_chat(None, &turns).unwrap();
    let mut streamed = String::new();
    let generation =
        engine.generate(&ids, &[], &options, &AtomicBool::new(false), &mut |piece| streamed.push_str(piece)).unwrap();
    (generation, streamed)
}

fn sampled(seed: u64) -> GenerateOptions {
    GenerateOptions { max_new_tokens: 24, temperature: 1.0, top_p: 0.95, seed, ..GenerateOptions::default() }
}

#[test]
fn the_same_seed_gives_the_same_answer_and_another_seed_another() {
    let engine = engine();
    let (a, _) = run(&engine, sampled(7));
    let (b, _) = run(&engine, sampled(7));
    let (c, _) = run(&engine, sampled(8));
    assert_eq!(a.token_ids, b.token_ids);
    assert_ne!(a.token_ids, c.token_ids, "seeds 7 and 8 sampled the same 24 tokens");
}

#[test]
fn top_k_of_one_is_greedy_whatever_the_temperature() {
    let engine = engine();
    let greedy = GenerateOptions { max_new_tokens: 12, ..GenerateOptions::default() };
    let top1 =
        GenerateOptions { max_new_tokens: 12, temperature: 5.0, top_k: 1, seed: 3, ..GenerateOptions::default() };
    assert_eq!(run(&engine, greedy).0.token_ids, run(&engine, top1).0.token_ids);
}

#[test]
fn a_repetition_penalty_changes_a_repetitive_greedy_answer() {
    let engine = engine();
    let plain = run(&engine, GenerateOptions { max_new_tokens: 12, ..GenerateOptions::default() }).0;
    // The random model repeats one token; penalising repeats must break that.
    assert!(plain.token_ids.windows(2).any(|w| w[0] == w[1]), "{:?}", plain.token_ids);
    let penalised =
        run(&engine, GenerateOptions { max_new_tokens: 12, repetition_penalty: 100.0, ..GenerateOptions::default() }).0;
    assert_ne!(plain.token_ids, penalised.token_ids);
}

#[test]
fn streaming_yields_the_final_text_and_max_tokens_is_respected() {
    let engine = engine();
    let (generation, streamed) = run(&engine, sampled(1));
    assert_eq!(generation.token_ids.len(), 24);
    assert_eq!(generation.stop, StopReason::MaxTokens);
    assert_eq!(generation.logprobs.len(), 24);
    assert!(generation.logprobs.iter().all(|&p| p <= 0.0));
    assert!(generation.text.starts_with(&streamed), "streamed {streamed:?} is not a prefix of {:?}", generation.text);
    assert_eq!(streamed, generation.text, "the final piece was not streamed");
}

#[test]
fn an_eos_token_ends_the_answer_and_is_not_in_the_text() {
    let mut engine = engine();
    let first = run(&engine, GenerateOptions { max_new_tokens: 1, ..GenerateOptions::default() }).0.token_ids[0];
    engine.eos_token_ids.push(first);
    let (generation, streamed) = run(&engine, GenerateOptions { max_new_tokens: 8, ..GenerateOptions::default() });
    assert_eq!(generation.stop, StopReason::Eos);
    assert_eq!(generation.token_ids, vec![first]);
    assert_eq!(generation.text, "");
    assert_eq!(streamed, "");
}

#[test]
fn no_eos_comes_before_the_minimum_length() {
    let mut engine = engine();
    let first = run(&engine, GenerateOptions { max_new_tokens: 1, ..GenerateOptions::default() }).0.token_ids[0];
    engine.eos_token_ids.push(first);
    let options = GenerateOptions { max_new_tokens: 8, min_new_tokens: 5, ..GenerateOptions::default() };
    let (generation, _) = run(&engine, options);
    assert!(!generation.token_ids[..5].iter().any(|t| engine.eos_token_ids.contains(t)), "{:?}", generation.token_ids);
    assert!(generation.token_ids.len() >= 5);
}

#[test]
fn cancellation_stops_before_the_next_token() {
    let engine = engine();
    let ids = engine
        .encode_chat(None, &[Turn { role: Role::User, text: "hi".into(), images: 0, image_captions: Vec::new() }])
        .unwrap();
    let generation =
        engine.generate(&ids, &[], &GenerateOptions::default(), &AtomicBool::new(true), &mut |_| {}).unwrap();
    assert_eq!(generation.stop, StopReason::Cancelled);
    assert!(generation.token_ids.is_empty());
}

#[test]
fn a_mismatch_between_image_tokens_and_images_is_an_input_error() {
    let engine = engine();
    let ids = engine
        .encode_chat(None, &[Turn { role: Role::User, text: "x".into(), images: 1, image_captions: Vec::new() }])
        .unwrap();
    let err =
        engine.generate(&ids, &[], &GenerateOptions::default(), &AtomicBool::new(false), &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("image tokens in the prompt for 0 image(s)"), "{err}");
}

/// transformers resizes with PIL (bilinear, antialiased, 8-bit result); we use libtorch's antialiased
/// bilinear and round. They may differ by a grey level here and there, not more.
#[test]
fn resizing_matches_the_reference_image_processor_within_one_grey_level() {
    let dir = fixture();
    let engine = engine();
    let golden: HashMap<String, Tensor> =
        Tensor::read_safetensors(dir.join("golden.safetensors")).unwrap().into_iter().collect();
    let ours = engine.load_image(&dir.join("resize.png")).unwrap().unsqueeze(0);
    let reference = &golden["resize.pixel_values"];
    assert_eq!(ours.size(), reference.size());
    // Normalised with mean 0.5 and std 0.5: one grey level is 2/255.
    let levels = ((&ours - reference).abs() / (2.0 / 255.0)).max().double_value(&[]);
    let mean_levels = ((&ours - reference).abs() / (2.0 / 255.0)).mean(Kind::Float).double_value(&[]);
    println!("resize: max {levels:.2} grey levels, mean {mean_levels:.3}");
    assert!(levels <= 1.0 + 1e-4, "resized pixels differ by {levels} grey levels");
}

/// Streams decoded together (the server's batched decode steps) must give each conversation exactly the
/// answer it gets alone: different prompt lengths, one with an image and its heatmap, one joining late.
#[test]
fn streams_stepped_together_answer_as_each_would_alone() {
    let engine = engine();
    let image = engine.load_image(&fixture().join("resize.png")).unwrap();
    let prompts = [
        (
            Turn {
                role: Role::User, text: "右肺上叶结节，边缘毛刺？".into(), images: 0, image_captions: Vec::new()
            },
            false,
        ),
        (Turn { role: Role::User, text: "描述这张胸片".into(), images: 1, image_captions: Vec::new() }, true),
        (
            Turn {
                role: Role::User,
                text: "a much longer question about the left lower lobe and its pleura".into(),
                images: 0,
                image_captions: Vec::new(),
            },
            false,
        ),
    ];
    let options = |seed| GenerateOptions {
        max_new_tokens: 20,
        temperature: 0.8,
        seed,
        image_attention: true,
        ..GenerateOptions::default()
    };
    let pixels = |with_image: bool| if with_image { vec![image.shallow_clone()] } else { vec![] };
    let alone: Vec<Generation> = prompts
        .iter()
        .enumerate()
        .map(|(i, (turn, with_image))| {
            let ids = engine.encode_chat(None, std::slice::from_ref(turn)).unwrap();
            engine
                .generate(&ids, &pixels(*with_image), &options(i as u64), &AtomicBool::new(false), &mut |_| {})
                .unwrap()
        })
        .collect();

    let mut streams: Vec<models::generate::Stream> = Vec::new();
    let mut texts = vec![String::new(); prompts.len()];
    let mut steps = 0;
    loop {
        // The third conversation arrives after four steps of the first two.
        if streams.len() < prompts.len() && (streams.len() < 2 || steps >= 4) {
            let (turn, with_image) = &prompts[streams.len()];
            let ids = engine.encode_chat(None, std::slice::from_ref(turn)).unwrap();
            streams.push(engine.start(&ids, &pixels(*with_image), &options(streams.len() as u64)).unwrap());
            continue;
        }
        if streams.iter().all(|s| s.is_finished()) {
            break;
        }
        let mut batch: Vec<&mut models::generate::Stream> = streams.iter_mut().collect();
        for (text, piece) in texts.iter_mut().zip(engine.step(&mut batch).unwrap()) {
            text.push_str(&piece);
        }
        steps += 1;
    }
    assert_eq!(steps, 4 + 20, "the late stream ran its 20 steps after the first four");
    for ((stream, text), alone) in streams.into_iter().zip(texts).zip(&alone) {
        let together = engine.finish(stream).unwrap();
        assert_eq!(together.token_ids, alone.token_ids);
        assert_eq!(together.text, alone.text);
        assert_eq!(text, alone.text, "streamed pieces add up to the answer");
        for (a, b) in together.logprobs.iter().zip(&alone.logprobs) {
            assert!((a - b).abs() < 1e-4, "log-probabilities {a} vs {b}");
        }
        assert_eq!(together.image_attention.len(), alone.image_attention.len());
        for (a, b) in together.image_attention.iter().zip(&alone.image_attention) {
            let diff = a.grid.iter().zip(&b.grid).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
            assert!(diff < 1e-5, "heatmap differs by {diff}");
        }
    }
}

/// MedGemma 1.5 thinks between `<unused94>` and `<unused95>`; that reasoning is not the answer.
#[test]
fn thinking_between_the_markers_is_kept_out_of_the_answer() {
    let mut engine = engine();
    assert!(engine.thinking_markers.is_some(), "the tiny tokenizer has the thinking markers");
    // The random model never emits the markers by itself: make it "think" by taking its first two
    // sampled tokens as the markers (a seed where they differ and do not come back later).
    let (options, plain) = (0..50)
        .map(|seed| {
            let options = GenerateOptions { max_new_tokens: 8, ..sampled(seed) };
            let plain = run(&engine, options.clone()).0;
            (options, plain)
        })
        .find(|(_, g)| {
            g.token_ids[0] != g.token_ids[1] && !g.token_ids[2..].iter().any(|t| g.token_ids[..2].contains(t))
        })
        .expect("a seed whose first two tokens differ");
    engine.thinking_markers = Some((plain.token_ids[0], plain.token_ids[1]));
    let (hidden, streamed) = run(&engine, options);
    assert_eq!(hidden.token_ids, plain.token_ids, "hiding changes the text, not the tokens");
    assert_eq!(hidden.text, engine.decode(&plain.token_ids[2..]).unwrap());
    assert_eq!(streamed, hidden.text);
}

/// Even a random model writes JSON that the schema accepts when generation is constrained to it: 20
/// sampled answers, decoded together, each parsed and checked against the schema's rules.
#[test]
fn constrained_answers_always_parse_and_follow_the_schema() {
    let engine = engine();
    let schema = serde_json::json!({
        "type": "object",
        "properties": {
            "location": {"type": "string", "minLength": 1, "maxLength": 12},
            "density": {"enum": ["实性", "部分实性", "磨玻璃"]},
            "signs": {"type": "array", "items": {"type": "string", "maxLength": 6}, "maxItems": 3},
            "suspicious": {"type": "boolean"}
        },
        "required": ["location", "density", "signs", "suspicious"],
        "additionalProperties": false
    });
    let ids = engine
        .encode_chat(
            None,
            &[Turn { role: Role::User, text: "生成结构化报告".into(), images: 0, image_captions: Vec::new() }],
        )
        .unwrap();
    let mut streams: Vec<models::generate::Stream> = (0..20)
        .map(|seed| {
            let options = GenerateOptions { max_new_tokens: 400, temperature: 1.0, seed, ..GenerateOptions::default() };
            let mut stream = engine.start(&ids, &[], &options).unwrap();
            stream.constrain(engine.json_constraint(&schema).unwrap());
            stream
        })
        .collect();
    while !streams.iter().all(|s| s.is_finished()) {
        let mut batch: Vec<&mut models::generate::Stream> = streams.iter_mut().collect();
        engine.step(&mut batch).unwrap();
    }
    let mut distinct = std::collections::HashSet::new();
    for stream in streams {
        let generation = engine.finish(stream).unwrap();
        assert_eq!(generation.stop, StopReason::Eos, "the document must end before the token limit");
        let value: serde_json::Value =
            serde_json::from_str(&generation.text).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", generation.text));
        let object = value.as_object().unwrap();
        assert_eq!(object.len(), 4, "{value}");
        let location = object["location"].as_str().unwrap();
        assert!((1..=12).contains(&location.chars().count()), "{value}");
        assert!(["实性", "部分实性", "磨玻璃"].contains(&object["density"].as_str().unwrap()), "{value}");
        let signs = object["signs"].as_array().unwrap();
        assert!(signs.len() <= 3 && signs.iter().all(|s| s.as_str().unwrap().chars().count() <= 6), "{value}");
        assert!(object["suspicious"].is_boolean());
        distinct.insert(generation.text);
    }
    assert!(distinct.len() > 10, "sampling should vary the answers: {distinct:?}");
}

/// A background prompt run stops between layers once asked to make way (a watched question came), in
/// the vision tower as in the text layers; asked never, it is the plain prompt run.
#[test]
fn a_prompt_run_makes_way_between_layers_when_asked() {
    use std::cell::Cell;
    let engine = engine();
    let ids = engine
        .encode_chat(None, &[Turn { role: Role::User, text: "描述".into(), images: 1, image_captions: Vec::new() }])
        .unwrap();
    let size = engine.preprocessor.as_ref().unwrap().height;
    let pixels = [Tensor::rand([3, size, size], (Kind::Float, Device::Cpu))];
    let options = GenerateOptions { max_new_tokens: 4, ..GenerateOptions::default() };
    let vision_layers = engine.config.vision.as_ref().unwrap().num_hidden_layers;
    let text_layers = engine.config.text.num_hidden_layers;

    for asked_at in [1, vision_layers, vision_layers + 1, vision_layers + text_layers] {
        let asked = Cell::new(0);
        let make_way = || {
            asked.set(asked.get() + 1);
            asked.get() == asked_at
        };
        let outcome = engine.start_unless(&ids, &pixels, &options, &make_way);
        assert!(matches!(outcome, Err(models::EngineError::MadeWay)), "asked at {asked_at}: ran on");
        assert_eq!(asked.get(), asked_at, "stopped at the first yes");
    }
    let asked = Cell::new(0);
    let never_asked = || {
        asked.set(asked.get() + 1);
        false
    };
    let stream = engine.start_unless(&ids, &pixels, &options, &never_asked).unwrap();
    assert_eq!(asked.get(), vision_layers + text_layers, "asked once before each layer");
    let plain = engine.start(&ids, &pixels, &options).unwrap();
    let answer = |mut stream: models::generate::Stream| {
        while !stream.is_finished() {
            engine.step(&mut [&mut stream]).unwrap();
        }
        engine.finish(stream).unwrap().token_ids
    };
    assert_eq!(answer(stream), answer(plain));
}
