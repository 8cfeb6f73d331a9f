#include "tools/gpu_profile/kernel_names.h"

#include <cxxabi.h>

#include <cstdlib>
#include <memory>

namespace baton::cuda {
namespace {

constexpr size_t kMaxNameChars = 100;

void erase_all(std::string& s, const std::string& what) {
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at)) s.erase(at, what.size());
}

}  // namespace

std::string kernel_display_name(const std::string& mangled) {
  int status = -1;
  std::unique_ptr<char, void (*)(void*)> demangled(abi::__cxa_demangle(mangled.c_str(), nullptr, nullptr, &status),
                                                   std::free);
  std::string s = status == 0 && demangled ? std::string(demangled.get()) : mangled;
  if (status == 0) {
    erase_all(s, "(anonymous namespace)::");
    erase_all(s, "baton::cuda::");
    // The parameter list: the first '(' outside template arguments.
    int depth = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '<') ++depth;
      else if (s[i] == '>') --depth;
      else if (s[i] == '(' && depth == 0) {
        s.resize(i);
        break;
      }
    }
    // A function template's return type ("void kernel<...>").
    if (s.rfind("void ", 0) == 0) s.erase(0, 5);
  }
  if (s.size() > kMaxNameChars) s.resize(kMaxNameChars);
  return s;
}

}  // namespace baton::cuda
