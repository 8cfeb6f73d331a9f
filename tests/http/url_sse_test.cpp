#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "http/sse_parser.h"
#include "http/url.h"

namespace baton::http {
namespace {

TEST(UrlTest, ParsesHostPortAndTarget) {
  auto url = parse_url("http://127.0.0.1:8000/v1/completions?x=1");
  ASSERT_TRUE(url.is_ok()) << url.status().to_string();
  EXPECT_EQ(url->scheme, "http");
  EXPECT_EQ(url->host, "127.0.0.1");
  EXPECT_EQ(url->port, 8000);
  EXPECT_EQ(url->target, "/v1/completions?x=1");
  EXPECT_EQ(url->host_port(), "127.0.0.1:8000");
}

TEST(UrlTest, DefaultsPortAndPath) {
  auto url = parse_url("HTTP://example.com");
  ASSERT_TRUE(url.is_ok());
  EXPECT_EQ(url->port, 80);
  EXPECT_EQ(url->target, "/");
  EXPECT_EQ(url->with_path("/v1/completions").target, "/v1/completions");
  auto base = parse_url("http://h:1/api/");
  ASSERT_TRUE(base.is_ok());
  EXPECT_EQ(base->with_path("v1/models").target, "/api/v1/models");
}

TEST(UrlTest, Ipv6Literal) {
  auto url = parse_url("http://[::1]:9000/x");
  ASSERT_TRUE(url.is_ok());
  EXPECT_EQ(url->host, "::1");
  EXPECT_EQ(url->port, 9000);
  EXPECT_EQ(url->host_port(), "[::1]:9000");
}

TEST(UrlTest, RejectsBadUrlsWithClearErrors) {
  EXPECT_NE(parse_url("127.0.0.1:8000").status().message().find("no scheme"), std::string::npos);
  EXPECT_NE(parse_url("http://:80/").status().message().find("missing host"), std::string::npos);
  EXPECT_NE(parse_url("http://h:99999/").status().message().find("bad port"), std::string::npos);
  EXPECT_NE(parse_url("http://h:/").status().message().find("bad port"), std::string::npos);
  EXPECT_NE(parse_url("http://h:12a/").status().message().find("bad port"), std::string::npos);
  EXPECT_EQ(parse_url("https://h/").status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(parse_url("ftp://h/").status().message().find("unknown scheme"), std::string::npos);
}

std::vector<SseEvent> parse_all(const std::vector<std::string>& pieces) {
  std::vector<SseEvent> events;
  SseParser p([&](const SseEvent& e) { events.push_back(e); });
  for (const auto& s : pieces) p.feed(s);
  p.finish();
  return events;
}

TEST(SseParserTest, EventsInOnePiece) {
  auto ev = parse_all({"data: {\"a\":1}\n\ndata: [DONE]\n\n"});
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].data, "{\"a\":1}");
  EXPECT_EQ(ev[1].data, "[DONE]");
}

TEST(SseParserTest, AnySplitGivesSameEvents) {
  std::string stream =
      ": comment\r\nevent: tick\r\ndata: line1\r\ndata:line2\r\nid: 7\r\n\r\ndata: x\rdata: y\r\rdata: z\n\n";
  auto whole = parse_all({stream});
  ASSERT_EQ(whole.size(), 3u);
  EXPECT_EQ(whole[0].event, "tick");
  EXPECT_EQ(whole[0].data, "line1\nline2");
  EXPECT_EQ(whole[0].id, "7");
  EXPECT_EQ(whole[1].data, "x\ny");
  EXPECT_EQ(whole[1].event, "");
  EXPECT_EQ(whole[2].data, "z");
  for (size_t cut = 1; cut < stream.size(); ++cut) {
    auto split = parse_all({stream.substr(0, cut), stream.substr(cut)});
    ASSERT_EQ(split.size(), 3u) << "cut at " << cut;
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(split[i].data, whole[i].data) << "cut at " << cut;
      EXPECT_EQ(split[i].event, whole[i].event) << "cut at " << cut;
    }
  }
  std::vector<std::string> bytes;
  for (char c : stream) bytes.emplace_back(1, c);
  EXPECT_EQ(parse_all(bytes).size(), 3u);
}

TEST(SseParserTest, FinishDeliversUnterminatedEvent) {
  auto ev = parse_all({"data: tail"});
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].data, "tail");
  EXPECT_TRUE(parse_all({"event: only\n\n", ": c\n"}).empty());
}

}  // namespace
}  // namespace baton::http
