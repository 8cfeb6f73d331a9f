// `baton up --launcher slurm` on a one-node Slurm cluster the test starts
// itself (tests/deploy/slurm_cluster.h): a 1P1D CPU deployment whose
// instances are job steps of an allocation serves requests through its
// router, a step that is scancel'ed is restarted like a dead process, and
// SIGTERM stops every step gracefully.
#include <signal.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "deploy/slurm_cluster.h"
#include "http/http_client.h"
#include "support/test_process.h"
#include "support/wait.h"

namespace baton::testing {
namespace {

namespace fs = std::filesystem;

bool completes(const std::string& router) {
  auto r = http::fetch(router + "/v1/completions", "POST",
                       R"({"model": "pd-slurm", "prompt": "Hello", "max_tokens": 4})", 30.0);
  return r.is_ok() && r->status == 200 && r->body.find("\"text\"") != std::string::npos;
}

TEST(SlurmLauncherTest, A1P1DDeploymentRunsAsJobStepsRestartsACancelledStepAndStopsCleanly) {
  SlurmCluster slurm;
  ASSERT_TRUE(slurm.ready()) << slurm.error();
  EtcdProcess etcd;
  ASSERT_TRUE(etcd.ready()) << etcd.log();
  const std::string job = slurm.allocate(2);
  ASSERT_FALSE(job.empty()) << slurm.run("sinfo");

  const int base = 26000 + (getpid() % 1000) * 6;
  const fs::path spec = fs::path(test_tmp_dir()) / "pd-slurm.yaml";
  std::ofstream(spec) << "name: pd-slurm\ndevice: cpu\nmode: pd\nkv_transport: shm\n"
                      << "prefill: {replicas: 1}\ndecode: {replicas: 1}\n"
                      << "engine_args: {num-threads: 1, max-num-seqs: 4, max-num-batched-tokens: 256}\n"
                      << "router: {port: " << base + 4 << "}\nbase_port: " << base << "\nbase_kv_port: " << base + 2
                      << "\ndiscovery: " << etcd.endpoint() << "\nhealth_timeout_s: 120\n";
  auto env = slurm.env();
  env.emplace_back("SLURM_JOB_ID", job);
  env.emplace_back("SLURM_JOB_NODELIST", slurm.node());
  const fs::path run_dir = fs::path(test_tmp_dir()) / "slurm-run";
  auto up = TestProcess::spawn({"up", "--launcher", "slurm", spec.string(), "--run-dir", run_dir.string()},
                               BATON_BINARY, env);
  ASSERT_TRUE(
      wait_until([&] { return up->full_log().find("endpoint: ") != std::string::npos || !up->running(); }, 150.0, 50))
      << up->log();
  ASSERT_TRUE(up->running()) << up->log();
  EXPECT_NE(up->full_log().find("instances as job steps on " + slurm.node()), std::string::npos) << up->log();
  const std::string router = "http://127.0.0.1:" + std::to_string(base + 4);
  EXPECT_TRUE(completes(router));

  // Both instances are steps of the allocation, named after them.
  const std::string steps = slurm.run("squeue -h -s -j " + job + " -o '%i %j'");
  EXPECT_NE(steps.find("baton-prefill-0"), std::string::npos) << steps;
  EXPECT_NE(steps.find("baton-decode-0"), std::string::npos) << steps;

  // scancel of the prefill's step: its srun ends, and it is restarted like a dead process.
  std::string step;
  std::istringstream lines(steps);
  for (std::string id, name; lines >> id >> name;) {
    if (name == "baton-prefill-0") step = id;
  }
  ASSERT_FALSE(step.empty()) << steps;
  slurm.run("scancel " + step);
  EXPECT_TRUE(wait_until([&] { return up->full_log().find("restarted prefill-0") != std::string::npos; }, 60.0, 50))
      << up->log();
  EXPECT_TRUE(wait_until(
      [&] { return up->full_log().find("prefill-0 healthy") != std::string::npos && completes(router); }, 120.0, 200))
      << up->log();

  // SIGTERM: every step drains and exits, and no step is left in the allocation.
  EXPECT_EQ(up->terminate(60.0), 0) << up->log();
  EXPECT_TRUE(
      wait_until([&] { return slurm.run("squeue -h -s -j " + job).find("baton-") == std::string::npos; }, 30.0, 200))
      << slurm.run("squeue -s");
  const std::string prefill_log = read_whole_file((run_dir / "prefill-0.log").string());
  const std::string decode_log = read_whole_file((run_dir / "decode-0.log").string());
  EXPECT_NE(prefill_log.rfind("server stopped"), std::string::npos) << prefill_log;
  EXPECT_NE(decode_log.rfind("server stopped"), std::string::npos) << decode_log;
}

TEST(SlurmLauncherTest, OutsideAnAllocationItSaysHowToGetOne) {
  std::string out;
  const int rc = run_baton(
      {"up", "--launcher", "slurm", (fs::path(BATON_TEST_DATA) / "../../examples/agg-cpu.yaml").string()}, &out, 30.0);
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("SLURM_JOB_ID"), std::string::npos) << out;
  EXPECT_NE(out.find("salloc"), std::string::npos) << out;
}

}  // namespace
}  // namespace baton::testing
