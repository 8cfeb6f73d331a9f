// One memory-mapped .safetensors file: an 8-byte little-endian header length,
// a JSON header {name: {dtype, shape, data_offsets}}, then the data. Opening
// checks the whole header (offsets inside the file, sizes = numel x dtype);
// a truncated or corrupt file is kDataLoss naming the file and the tensor.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <string>

#include "common/status.h"
#include "model/tensor.h"

namespace baton {

class SafetensorsFile {
 public:
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  static Result<std::unique_ptr<SafetensorsFile>> open(const std::string& path);

  const std::string& path() const { return path_; }
  size_t file_size_bytes() const { return size_bytes_; }
  // Every tensor of the file, by name; views point into the mapping, which
  // lives as long as this object.
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }

 private:
  SafetensorsFile() = default;

  std::string path_;
  void* map_ = nullptr;
  size_t size_bytes_ = 0;
  std::map<std::string, TensorView> tensors_;
};

// Checks and parses the header of a whole safetensors file held in memory
// (`file`, `file_size` bytes; `path` names it in errors): the tensors, whose
// views point into `file`. What SafetensorsFile::open does after mapping.
Result<std::map<std::string, TensorView>> parse_safetensors_header(const unsigned char* file, size_t file_size,
                                                                   const std::string& path);

// Parses a safetensors dtype name ("F32", "F16", "BF16", "F8_E4M3"); others are
// kUnimplemented naming the dtype.
Result<DType> parse_safetensors_dtype(const std::string& name);

}  // namespace baton
