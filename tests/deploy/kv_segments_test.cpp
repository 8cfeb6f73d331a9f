// The KV segments a killed `baton serve` leaves in /dev/shm are found by its
// pid and removed (deploy/kv_segments.h), with the names the shm transport
// really gives them (kv_transfer/shm_buffer.h).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "deploy/child_process.h"
#include "deploy/kv_segments.h"
#include "deploy/test_dir.h"
#include "kv_transfer/shm_buffer.h"

namespace baton::deploy {
namespace {

namespace fs = std::filesystem;

TEST(KvSegmentsTest, WhatAKilledProcessLeftIsFoundByItsPidAndRemoved) {
  // The child maps a segment as a prefill instance does, then dies without unmapping or unlinking it.
  auto child = ChildProcess::fork_call([] {
    auto buffer = SharedMemoryBuffer::create(SharedMemoryBuffer::unique_name("segtest"), 4096);
    if (!buffer.is_ok()) return 3;
    buffer->release();  // leaks it, as SIGKILL would
    return 0;
  });
  ASSERT_TRUE(child.is_ok());
  ASSERT_TRUE(child->wait_exit(30.0));
  ASSERT_EQ(child->exit_code(), 0);
  const pid_t pid = child->pid();
  const std::vector<std::string> left = kv_segments_of(pid);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_TRUE(fs::exists(fs::path(kShmDir) / left[0]));
  EXPECT_EQ(remove_kv_segments_of(pid), 1);
  EXPECT_FALSE(fs::exists(fs::path(kShmDir) / left[0]));
  EXPECT_TRUE(kv_segments_of(pid).empty());
  EXPECT_EQ(remove_kv_segments_of(pid), 0);
}

TEST(KvSegmentsTest, OnlyThatPidsSegmentsNotAPidItPrefixes) {
  const fs::path dir = fresh_test_dir("baton-kv-segments-test", "prefix");
  for (const char* name : {"baton-kv-12-aa-pdkv", "baton-kv-123-bb-pdkv", "baton-kv-1-cc-pdkv", "other-12-x"}) {
    std::ofstream(dir / name) << "x";
  }
  EXPECT_EQ(kv_segments_of(12, dir.string()), std::vector<std::string>{"baton-kv-12-aa-pdkv"});
  EXPECT_EQ(remove_kv_segments_of(12, dir.string()), 1);
  EXPECT_TRUE(fs::exists(dir / "baton-kv-123-bb-pdkv"));
  EXPECT_TRUE(fs::exists(dir / "baton-kv-1-cc-pdkv"));
  EXPECT_TRUE(kv_segments_of(99, (dir / "missing").string()).empty());
  fs::remove_all(dir);
}

}  // namespace
}  // namespace baton::deploy
