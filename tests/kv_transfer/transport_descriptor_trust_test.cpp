// A peer's descriptor as the same-host transports read it: its
// transport_params are input, so a field of the wrong type is an error that
// names it (it used to throw out of nlohmann::json), and the local
// transport reads only a region a LocalTransport of this process serves,
// within its size (it used to read any address the peer sent).
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "kv_test_util.h"
#include "kv_transfer/local_transport.h"
#include "kv_transfer/peer_descriptor.h"
#include "kv_transfer/shm_transport.h"

namespace baton {
namespace {

using testing::small_shape;
using testing::TestRegion;

void expect_refused(const Result<std::unique_ptr<PeerLink>>& link, const std::string& part) {
  ASSERT_FALSE(link.is_ok());
  EXPECT_NE(link.status().message().find(part), std::string::npos) << link.status().message();
}

TEST(TransportDescriptorTrustTest, LocalReadsOnlyARegionThisProcessServes) {
  TestRegion served = TestRegion::heap(small_shape(8)), reader_region = TestRegion::heap(small_shape(8));
  LocalTransport server, reader;
  PeerDescriptor served_desc = PeerDescriptor::from_region(served.desc(), "prefill", "m");
  PeerDescriptor reader_desc = PeerDescriptor::from_region(reader_region.desc(), "decode", "m");
  ASSERT_TRUE(server.register_local(served.desc(), served_desc).is_ok());
  ASSERT_TRUE(reader.register_local(reader_region.desc(), reader_desc).is_ok());
  EXPECT_TRUE(reader.connect(served_desc).is_ok());

  PeerDescriptor made_up = served_desc;  // an address no LocalTransport registered
  made_up.transport_params["base"] = served_desc.transport_params["base"].get<uint64_t>() + 4096;
  expect_refused(reader.connect(made_up), "names no KV region this process serves");

  PeerDescriptor too_many = served_desc;  // past the served region's end
  too_many.num_blocks = 9;
  expect_refused(reader.connect(too_many), "names 9 blocks of 512 bytes at offset 0 of 4096 bytes it can serve");
  too_many.num_blocks = int64_t{1} << 62;  // blocks x bytes overflows
  expect_refused(reader.connect(too_many), "of 4096 bytes it can serve");

  PeerDescriptor wrong_types = served_desc;
  wrong_types.transport_params["pid"] = "not a pid";
  expect_refused(reader.connect(wrong_types), "transport_params");
  wrong_types = served_desc;
  wrong_types.transport_params["base"] = Json::array({1, 2});
  expect_refused(reader.connect(wrong_types), "transport_params");
}

TEST(TransportDescriptorTrustTest, ARegionIsServedUntilItsLastTransportGoes) {
  TestRegion served = TestRegion::heap(small_shape(4)), reader_region = TestRegion::heap(small_shape(4));
  LocalTransport reader;
  PeerDescriptor reader_desc = PeerDescriptor::from_region(reader_region.desc(), "decode", "m");
  ASSERT_TRUE(reader.register_local(reader_region.desc(), reader_desc).is_ok());
  PeerDescriptor served_desc = PeerDescriptor::from_region(served.desc(), "prefill", "m");
  {
    auto first = std::make_unique<LocalTransport>();
    LocalTransport second;
    ASSERT_TRUE(first->register_local(served.desc(), served_desc).is_ok());
    ASSERT_TRUE(second.register_local(served.desc(), served_desc).is_ok());
    first.reset();
    EXPECT_TRUE(reader.connect(served_desc).is_ok());  // the second still serves it
  }
  expect_refused(reader.connect(served_desc), "names no KV region this process serves");
}

TEST(TransportDescriptorTrustTest, ShmParamsOfTheWrongTypeAreErrors) {
  TestRegion region = TestRegion::shm(small_shape(4));
  ShmTransport reader;
  PeerDescriptor desc = PeerDescriptor::from_region(region.desc(), "decode", "m");
  ASSERT_TRUE(reader.register_local(region.desc(), desc).is_ok());
  PeerDescriptor remote = desc;
  remote.transport_params["shm_name"] = 5;
  expect_refused(reader.connect(remote), "field 'shm_name' has the wrong type");
  remote = desc;
  remote.transport_params["hostname"] = Json::object();
  expect_refused(reader.connect(remote), "field 'hostname' has the wrong type");
}

}  // namespace
}  // namespace baton
