#include "http/sse_parser.h"

namespace baton::http {

void SseParser::feed(std::string_view bytes) {
  size_t i = 0;
  if (skip_lf_ && !bytes.empty()) {
    if (bytes.front() == '\n') i = 1;
    skip_lf_ = false;
  }
  while (i < bytes.size()) {
    size_t end = bytes.find_first_of("\r\n", i);
    if (end == std::string_view::npos) {
      line_.append(bytes.substr(i));
      return;
    }
    std::string_view piece = bytes.substr(i, end - i);
    if (line_.empty()) {
      process_line(piece);
    } else {
      line_.append(piece);
      process_line(line_);
      line_.clear();
    }
    if (bytes[end] == '\r') {
      if (end + 1 < bytes.size()) {
        i = bytes[end + 1] == '\n' ? end + 2 : end + 1;
      } else {
        skip_lf_ = true;
        i = end + 1;
      }
    } else {
      i = end + 1;
    }
  }
}

void SseParser::finish() {
  if (!line_.empty()) {
    std::string last = std::move(line_);
    line_.clear();
    process_line(last);
  }
  if (has_data_) dispatch();
}

void SseParser::process_line(std::string_view line) {
  if (line.empty()) {  // a blank line ends the event
    if (has_data_) dispatch();
    current_.event.clear();
    return;
  }
  if (line.front() == ':') return;  // comment
  std::string_view field = line;
  std::string_view value;
  if (auto colon = line.find(':'); colon != std::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (has_data_) current_.data.push_back('\n');
    current_.data.append(value);
    has_data_ = true;
  } else if (field == "event") {
    current_.event.assign(value);
  } else if (field == "id") {
    current_.id.assign(value);
  }  // "retry" and unknown fields are ignored, as the spec says
}

void SseParser::dispatch() {
  ++num_events_;
  on_event_(current_);
  current_.data.clear();
  current_.event.clear();
  has_data_ = false;
}

}  // namespace baton::http
