// Runs the built `baton` binary for the CLI tests: its exit status and what
// it wrote to stdout and stderr together.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace baton::testing {

struct BatonOutput {
  int rc = -1;      // the exit status; -1 when it did not exit normally
  std::string out;  // stdout then stderr, interleaved as written
};

// `args` are shell words after the binary, e.g. "tokenize --text 'Hi'".
inline BatonOutput run_baton(const std::string& args) {
  const std::string cmd = std::string(BATON_BINARY) + " " + args + " 2>&1";
  BatonOutput o;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return o;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) o.out.append(buf.data(), n);
  const int status = pclose(p);
  o.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return o;
}

}  // namespace baton::testing
