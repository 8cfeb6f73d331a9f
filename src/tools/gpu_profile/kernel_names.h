// The names the GPU profile reports kernels by (step_kernels.h): a device
// function's mangled symbol, as the CUDA driver gives it, made readable.
#pragma once

#include <string>

namespace baton::cuda {

// Demangled, without the return type, the parameter list, "baton::cuda::"
// or anonymous namespaces; template arguments kept (they tell a kernel's
// forms apart); at most 100 characters. A name that does not demangle (a
// library's kernel, extern "C") is kept as it is, cut to 100.
std::string kernel_display_name(const std::string& mangled);

}  // namespace baton::cuda
