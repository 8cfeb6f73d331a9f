// etcd's gateway answers (src/discovery/etcd_messages.h): real answers parse;
// an answer with a field of the wrong type, an int64 that is none, or a
// missing part is an error that names it, never an exception (each of these
// used to throw out of the keep-alive or watch thread, ending the process).
#include "discovery/etcd_messages.h"

#include <gtest/gtest.h>

#include <string>

namespace baton::discovery {
namespace {

void expect_error(const Status& st, const std::string& part) {
  EXPECT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find(part), std::string::npos) << st.message();
}

TEST(EtcdMessagesTest, RealAnswersParse) {
  EXPECT_EQ(parse_lease_grant(R"({"header":{"revision":"7"},"ID":"7587883481349406996","TTL":"10"})").value(),
            7587883481349406996);
  EXPECT_EQ(parse_lease_grant(R"({"ID":42,"TTL":10})").value(), 42);
  EXPECT_EQ(parse_keep_alive(R"({"result":{"header":{"revision":"7"},"ID":"1","TTL":"9"}})").value(), 9);
  EXPECT_EQ(parse_keep_alive(R"({"result":{"header":{"revision":"7"},"ID":"1"}})").value(), 0);  // expired

  auto range = parse_range(
      R"({"header":{"revision":"12"},"kvs":[{"key":"L2JhdG9uL2E=","mod_revision":"11","value":"e30="},)"
      R"({"key":"L2JhdG9uL2I=","mod_revision":"12"}],"count":"2"})");
  ASSERT_TRUE(range.is_ok()) << range.status().message();
  EXPECT_EQ(range->revision, 12);
  ASSERT_EQ(range->kvs.size(), 2u);
  EXPECT_EQ(range->kvs[0].key, "/baton/a");
  EXPECT_EQ(range->kvs[0].value, "{}");
  EXPECT_EQ(range->kvs[0].mod_revision, 11);
  EXPECT_EQ(range->kvs[1].value, "");  // the gateway leaves empty values out
  EXPECT_TRUE(parse_range(R"({"header":{"revision":"3"}})").value().kvs.empty());

  auto created = parse_watch_message(R"({"result":{"header":{"revision":"12"},"created":true}})");
  ASSERT_TRUE(created.is_ok());
  EXPECT_TRUE(created->empty());
  auto events = parse_watch_message(
      R"({"result":{"events":[{"kv":{"key":"L2JhdG9uL2E=","mod_revision":"13","value":"e30="}},)"
      R"({"type":"DELETE","kv":{"key":"L2JhdG9uL2I=","mod_revision":"14"}}]}})");
  ASSERT_TRUE(events.is_ok()) << events.status().message();
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[0].type, WatchEvent::Type::kPut);
  EXPECT_EQ((*events)[0].kv.key, "/baton/a");
  EXPECT_EQ((*events)[1].type, WatchEvent::Type::kDelete);
  EXPECT_EQ((*events)[1].kv.mod_revision, 14);
}

TEST(EtcdMessagesTest, FieldsOfTheWrongTypeAreErrors) {
  expect_error(parse_lease_grant("[1, 2]").status(), "not a JSON object");
  expect_error(parse_lease_grant(R"({"ID":"abc"})").status(), "'ID' is not an int64");
  expect_error(parse_lease_grant(R"({"ID":"12x"})").status(), "'ID' is not an int64");
  expect_error(parse_lease_grant(R"({"ID":1.5})").status(), "'ID' is not an int64");
  expect_error(parse_lease_grant(R"({"ID":"99999999999999999999"})").status(), "'ID' is not an int64");
  expect_error(parse_lease_grant(R"({"ID":18446744073709551615})").status(), "above int64's range");
  expect_error(parse_lease_grant(R"({"ID":"0"})").status(), "granted no lease");
  expect_error(parse_keep_alive(R"({"result":"x"})").status(), "'result' is not an object");
  expect_error(parse_keep_alive(R"({"result":{"TTL":[9]}})").status(), "'TTL' is not an int64");
  expect_error(parse_range(R"({"header":"x"})").status(), "'header' is not an object");
  expect_error(parse_range(R"({"header":{"revision":{}}})").status(), "'revision' is not an int64");
  expect_error(parse_range(R"({"kvs":5})").status(), "'kvs' is not an array");
  expect_error(parse_range(R"({"kvs":[5]})").status(), "not an object");
  expect_error(parse_range(R"({"kvs":[{"key":7}]})").status(), "'key' is not a string");
  expect_error(parse_range(R"({"kvs":[{"key":"a*b"}]})").status(), "invalid base64");
  expect_error(parse_range(R"({"kvs":[{"key":"YQ==","mod_revision":true}]})").status(), "'mod_revision'");
}

TEST(EtcdMessagesTest, BadWatchMessagesAreErrors) {
  expect_error(parse_watch_message("not json").status(), "watch message");
  expect_error(parse_watch_message(R"("a string")").status(), "not a JSON object");
  expect_error(parse_watch_message(R"({"result":[1]})").status(), "'result' is not an object");
  expect_error(parse_watch_message(R"({"result":{"events":{}}})").status(), "'events' is not an array");
  expect_error(parse_watch_message(R"({"result":{"events":[7]}})").status(), "an event is not an object");
  expect_error(parse_watch_message(R"({"result":{"events":[{"type":3,"kv":{}}]}})").status(), "'type'");
  expect_error(parse_watch_message(R"({"result":{"events":[{"type":"MOVE","kv":{}}]}})").status(), "MOVE");
  expect_error(parse_watch_message(R"({"result":{"events":[{"type":"PUT"}]}})").status(), "has no 'kv'");
  expect_error(parse_watch_message(R"({"result":{"events":[{"kv":"x"}]}})").status(), "not an object");
  expect_error(parse_watch_message(R"({"error":{"grpc_code":14,"message":"etcdserver: no leader"}})").status(),
               "no leader");
}

TEST(EtcdMessagesTest, ErrorAnswersSayWhatEtcdSaid) {
  EXPECT_EQ(parse_error_answer(R"({"error":"lease not found","code":5,"message":"lease not found"})"),
            "lease not found");
  EXPECT_EQ(parse_error_answer(R"({"error":{"message":"no leader"}})"), "no leader");
  EXPECT_EQ(parse_error_answer("[1]"), "[1]");  // not an object: the body
  EXPECT_EQ(parse_error_answer(R"({"message":7})"), "7");
  EXPECT_EQ(parse_error_answer(std::string(1000, 'x')).size(), 200u);
}

}  // namespace
}  // namespace baton::discovery
