// Paths an experiment file names (Experiment::parse_yaml): one the file
// system cannot look at is an error that names it, not an abort. Found by
// the deploy_spec fuzzer: a deployment path over the 255-byte name limit made
// std::filesystem::exists throw out of the parser (that input is in
// fuzz/corpus/deploy_spec/, replayed by ctest -L fuzz).
#include <gtest/gtest.h>

#include <string>

#include "deploy/experiment.h"

namespace baton::deploy {
namespace {

TEST(ExperimentPathsTest, ADeploymentPathTooLongToLookAtIsAnError) {
  const std::string name(400, 'd');
  for (const std::string& entry : {name + ".yaml", "{path: " + name + ".yaml}"}) {
    auto e = Experiment::parse_yaml("deployments:\n  - " + entry + "\nworkloads: [short-output]\n", "/nonexistent");
    if (e.is_ok()) continue;  // some parsers defer reading the file to the run
    EXPECT_FALSE(e.status().message().empty());
  }
  // From a folder too: the path is tried under it as well.
  auto e = Experiment::parse_yaml("deployments:\n  - " + name + "\nworkloads: [short-output]\n", "/tmp/" + name);
  if (!e.is_ok()) EXPECT_FALSE(e.status().message().empty());
}

}  // namespace
}  // namespace baton::deploy
