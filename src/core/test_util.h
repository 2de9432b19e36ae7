// Helpers for unit tests only: a temporary directory removed at the end of the test, and the
// location of the shared KCIDB reference data.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace sluice::testing {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sluice-test-XXXXXX").string();
    char* p = ::mkdtemp(tmpl.data());
    if (p == nullptr) std::abort();
    path_ = p;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void WriteAll(const std::string& path, const std::string& data) {
  std::ofstream out(path);
  out << data;
}

// ../shared/kcidb beside the repository (or $SLUICE_SHARED_DIR/kcidb); empty when absent.
inline std::string SharedKcidbDir() {
  const char* env = std::getenv("SLUICE_SHARED_DIR");
  std::string base = env != nullptr ? env : std::string(SLUICE_SOURCE_DIR) + "/../shared";
  std::string dir = base + "/kcidb";
  return std::filesystem::exists(dir) ? dir : "";
}

inline std::string SourceDir() { return SLUICE_SOURCE_DIR; }

}  // namespace sluice::testing
