//! Server-sent events read from a `fetch` body (the chat is a POST, which `EventSource` cannot send).

/// Takes every complete event (ended by a blank line) out of `buffer`, as (event name, data); bytes of
/// an event still arriving stay in the buffer. Comment lines (keep-alives) are skipped; an event
/// without a name is "message", as the SSE standard says.
pub fn take_events(buffer: &mut Vec<u8>) -> Vec<(String, String)> {
    let mut events = Vec::new();
    while let Some(end) = find_blank_line(buffer) {
        let block: Vec<u8> = buffer.drain(..end.0 + end.1).collect();
        let text = String::from_utf8_lossy(&block[..end.0]);
        let (mut name, mut data) = (String::new(), Vec::new());
        for line in text.lines() {
            if let Some(v) = line.strip_prefix("event:") {
                name = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push(v.strip_prefix(' ').unwrap_or(v).to_string());
            }
        }
        if !data.is_empty() {
            events.push((if name.is_empty() { "message".into() } else { name }, data.join("\n")));
        }
    }
    events
}

/// Where the first blank line is: (end of the event's text, length of the separator).
fn find_blank_line(buffer: &[u8]) -> Option<(usize, usize)> {
    (0..buffer.len()).find_map(|i| {
        if buffer[i..].starts_with(b"\n\n") {
            Some((i, 2))
        } else if buffer[i..].starts_with(b"\r\n\r\n") {
            Some((i, 4))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_taken_whole_and_partial_ones_wait() {
        let mut buffer =
            b"event: token\ndata: {\"text\":\"\xe5\x8f\xb3\xe8\x82\xba\"}\n\n: keep-alive\n\nevent: done\ndata: {\"te"
                .to_vec();
        let events = take_events(&mut buffer);
        assert_eq!(events, vec![("token".to_string(), "{\"text\":\"右肺\"}".to_string())]);
        assert_eq!(buffer, b"event: done\ndata: {\"te");
        buffer.extend_from_slice(b"xt\":\"x\"}\r\n\r\ndata: plain\n\n");
        let events = take_events(&mut buffer);
        assert_eq!(
            events,
            vec![("done".to_string(), "{\"text\":\"x\"}".to_string()), ("message".to_string(), "plain".to_string())]
        );
        assert!(buffer.is_empty());
    }

    #[test]
    fn a_character_split_between_chunks_is_not_garbled() {
        // 右 is E5 8F B3: the chunk boundary falls inside it.
        let mut buffer = b"event: token\ndata: \xe5\x8f".to_vec();
        assert!(take_events(&mut buffer).is_empty());
        buffer.extend_from_slice(b"\xb3\n\n");
        assert_eq!(take_events(&mut buffer), vec![("token".to_string(), "右".to_string())]);
    }
}
