// Incremental Server-Sent Events parser (the text/event-stream format of the
// WHATWG spec): feed it body bytes as they arrive, in any split, and it calls
// back once per complete event. Handles LF, CRLF and CR line ends, multi-line
// data (joined with '\n'), comments (":"), the "event:" and "id:" fields.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace baton::http {

struct SseEvent {
  std::string event;  // the "event:" field; empty means "message"
  std::string data;   // "data:" lines joined with '\n'
  std::string id;
};

class SseParser {
 public:
  using EventFn = std::function<void(const SseEvent&)>;
  explicit SseParser(EventFn on_event) : on_event_(std::move(on_event)) {}

  // Feeds a piece of the stream. Complete events are delivered at once.
  void feed(std::string_view bytes);
  // Delivers an event left without its terminating blank line (end of stream).
  void finish();
  // Number of events delivered so far.
  size_t num_events() const { return num_events_; }
  // Bytes held for an incomplete line (bounded by the longest line).
  size_t pending_bytes() const { return line_.size(); }

 private:
  void process_line(std::string_view line);
  void dispatch();

  EventFn on_event_;
  std::string line_;      // the incomplete current line
  bool skip_lf_ = false;  // the previous chunk ended in CR: a leading LF is part of it
  SseEvent current_;
  bool has_data_ = false;
  size_t num_events_ = 0;
};

}  // namespace baton::http
