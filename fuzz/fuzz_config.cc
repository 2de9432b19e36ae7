// Fuzz target: the config-file reader (-c FILE): global flags and [spool.NAME] sections.
// Invariants: never a crash; every flag it makes starts with "--"; an error names the file.
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string>

#include "cli/commands.h"
#include "fuzz/check.h"

using namespace sluice;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/sluice-fuzz-config-" + std::to_string(getpid()) + ".toml";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  std::map<std::string, std::string> origins;
  auto args = cli::ConfigFileArgs(path, &origins);
  if (args.ok()) {
    for (const std::string& a : *args) FUZZ_CHECK(a.rfind("--", 0) == 0);
  } else {
    FUZZ_CHECK(args.status().message().find(path) != std::string::npos);
  }
  auto spools = cli::ConfigSpoolArgs(path);
  if (spools.ok()) {
    for (const auto& [name, flags] : *spools) {
      for (const std::string& a : flags) FUZZ_CHECK(a.rfind("--", 0) == 0);
    }
  }
  return 0;
}
