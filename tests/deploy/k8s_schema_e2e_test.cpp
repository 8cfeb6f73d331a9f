// `baton up --emit k8s` for every example spec, validated against the
// Kubernetes API's schemas by tests/deploy/validate_k8s.mjs (node and the npm
// package kubernetes-models, installed by scripts/install-deps.sh).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cli/run_baton.h"
#include "deploy/test_dir.h"

namespace baton::deploy {
namespace {

namespace fs = std::filesystem;

const fs::path kSource = fs::path(BATON_TEST_DATA).parent_path().parent_path();

testing::BatonOutput validate(const std::string& files) {
  // run_baton's popen helper, but for node: the validator's exit status and output.
  const std::string cmd = "node " + (kSource / "tests/deploy/validate_k8s.mjs").string() + " " + files + " 2>&1";
  testing::BatonOutput o;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return o;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) o.out.append(buf, n);
  const int status = pclose(p);
  o.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return o;
}

TEST(K8sSchemaTest, EveryExampleSpecEmitsManifestsTheKubernetesSchemasAccept) {
  const fs::path out = fresh_test_dir("baton-k8s", "examples");
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(kSource / "examples")) {
    if (e.path().extension() != ".yaml") continue;
    const fs::path dir = out / e.path().stem();
    auto emitted = testing::run_baton("up --emit k8s " + e.path().string() + " --out " + dir.string());
    ASSERT_EQ(emitted.rc, 0) << e.path() << ": " << emitted.out;
    for (const auto& f : fs::directory_iterator(dir)) files.push_back(f.path());
    if (fs::exists(dir / "kv-secret.yaml")) {
      // The secret is written owner-only.
      EXPECT_EQ(fs::status(dir / "kv-secret.yaml").permissions() & fs::perms::all,
                fs::perms::owner_read | fs::perms::owner_write);
    }
  }
  ASSERT_GE(files.size(), 5u * 2);  // at least 5 specs of a router and a role each
  std::string args;
  for (const fs::path& f : files) args += " " + f.string();
  auto checked = validate(args);  // one node process for them all
  EXPECT_EQ(checked.rc, 0) << checked.out;
  EXPECT_EQ(checked.out.find("error"), std::string::npos) << checked.out;
  for (const fs::path& f : files) EXPECT_NE(checked.out.find("ok " + f.string()), std::string::npos) << f;
  fs::remove_all(out);
}

TEST(K8sSchemaTest, TheValidatorRefusesAnInvalidManifest) {
  const fs::path dir = fresh_test_dir("baton-k8s", "invalid");
  // A container port as a string, and an object of a kind no schema knows.
  std::ofstream(dir / "bad.yaml") << "apiVersion: v1\nkind: Service\nmetadata: {name: x}\n"
                                     "spec: {ports: [{port: \"8000\"}]}\n---\n"
                                     "apiVersion: v1\nkind: Frobnicator\nmetadata: {name: y}\n";
  auto checked = validate((dir / "bad.yaml").string());
  EXPECT_EQ(checked.rc, 1) << checked.out;
  EXPECT_NE(checked.out.find("port must be integer"), std::string::npos) << checked.out;
  EXPECT_NE(checked.out.find("Frobnicator"), std::string::npos) << checked.out;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace baton::deploy
