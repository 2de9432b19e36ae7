// Demo submission generator.
#include "handlers/kcidb/demo.h"

#include <cstdio>

namespace sluice::kcidb {
namespace {

const char* kRepos[] = {
    "https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git",
    "https://git.kernel.org/pub/scm/linux/kernel/git/stable/linux.git",
    "https://git.kernel.org/pub/scm/linux/kernel/git/next/linux-next.git",
    "https://example.org/not-a-known-tree.git",
};
const char* kArchs[] = {"x86_64", "arm64", "arm", "riscv"};
const char* kStatus[] = {"PASS", "PASS", "PASS", "PASS", "FAIL", "SKIP", "ERROR"};
const char* kPaths[] = {"baseline.login", "kselftest.net.ping", "ltp.syscalls.read01", "boot",
                        "kunit.ext4.inode"};

std::string Hex(std::mt19937_64& rng, int n) {
  static const char* kHex = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < n; ++i) s += kHex[rng() % 16];
  return s;
}

std::string Time(int index, int offset_s) {
  int s = (index * 7 + offset_s) % 86400;
  char buf[64];
  std::snprintf(buf, sizeof(buf), "2026-11-%02d T%02d:%02d:%02d.000000+00:00", 1 + index % 28,
                s / 3600, (s / 60) % 60, s % 60);
  std::string out(buf);
  out.erase(out.find(' '), 1);
  return out;
}

}  // namespace

std::string DemoSubmission(const DemoOptions& o, int index, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(0, 1);
  std::string arch = kArchs[rng() % 4];
  std::string build = "demo:build-" + std::to_string(index);
  std::string tests;
  for (int k = 0; k < (o.minimal ? 1 : o.tests_per_file); ++k) {
    std::string status = kStatus[rng() % 7];
    std::string excerpt;
    if (status == "FAIL" && !o.minimal) {
      excerpt = ",\"log_excerpt\":\"";
      for (int line = 0; line < 8; ++line) {
        excerpt += "[   " + std::to_string(line) + ".000] " + arch +
                   ": unexpected result in step " + std::to_string(line) + "\\n";
      }
      excerpt += "\"";
    }
    if (!tests.empty()) tests += ",";
    tests += "{\"id\":\"demo:test-" + std::to_string(index) + "-" + std::to_string(k) +
             "\",\"build_id\":\"" + build + "\",\"origin\":\"demo\",\"path\":\"" +
             kPaths[rng() % 5] + "\",\"status\":\"" + status + "\",\"start_time\":\"" +
             Time(index, k) + "\",\"duration\":" + std::to_string(rng() % 600) +
             ".5,\"environment\":{\"comment\":\"qemu " + arch +
             "\",\"misc\":{\"platform\":\"qemu-" + arch + "\"}}" + excerpt + "}";
  }
  std::string body;
  if (o.minimal) {
    body = "{\"version\":{\"major\":5,\"minor\":3},\"tests\":[" + tests + "]}";
  } else {
    std::string checkout = "demo:checkout-" + std::to_string(index / 10);
    body = "{\"version\":{\"major\":5,\"minor\":3},\"checkouts\":[{\"id\":\"" + checkout +
           "\",\"origin\":\"demo\",\"git_repository_url\":\"" + kRepos[(index / 10) % 4] +
           "\",\"git_commit_hash\":\"" + Hex(rng, 40) +
           "\",\"git_repository_branch\":\"master\",\"start_time\":\"" + Time(index, 0) +
           "\",\"valid\":true}],\"builds\":[{\"id\":\"" + build +
           "\",\"origin\":\"demo\",\"checkout_id\":\"" + checkout + "\",\"architecture\":\"" +
           arch + "\",\"config_name\":\"defconfig\",\"compiler\":\"gcc-12\",\"start_time\":\"" +
           Time(index, 1) + "\",\"duration\":" + std::to_string(60 + rng() % 900) +
           ".25,\"status\":\"PASS\"}],\"tests\":[" + tests + "]}";
  }
  if (u(rng) < o.bad_fraction) {
    switch (rng() % 3) {
      case 0:
        return body.substr(0, body.size() / 2);  // truncated
      case 1: {                                  // a status the schema does not know
        size_t pos = body.find("\"status\":\"");
        return body.substr(0, pos) + "\"status\":\"MAYBE\"" +
               body.substr(body.find('"', pos + 10) + 1);
      }
      default:
        return "{\"version\":{\"major\":6,\"minor\":0},\"tests\":[]}";
    }
  }
  return body;
}

Result<int> WriteDemoSpool(Env* env, const std::string& dir, const DemoOptions& o) {
  SLUICE_RETURN_IF_ERROR(env->CreateDirs(dir));
  std::mt19937_64 rng(o.seed);
  for (int i = 0; i < o.count; ++i) {
    char name[64];
    std::snprintf(name, sizeof(name), "demo-%06d-%llu.json", i,
                  static_cast<unsigned long long>(o.seed));
    std::string text = DemoSubmission(o, i, rng);
    std::string tmp = JoinPath(dir, std::string(".") + name + ".tmp");
    std::string path = JoinPath(dir, name);
    SLUICE_RETURN_IF_ERROR(env->WriteFile(tmp, text));
    SLUICE_RETURN_IF_ERROR(env->Rename(tmp, path));
  }
  return o.count;
}

}  // namespace sluice::kcidb
