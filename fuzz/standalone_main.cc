// A main for the fuzz targets when they are built without libFuzzer (the g++ and ASan
// builds that `make test` runs): replays every file of the corpus directories given, then
// feeds mutations of them for a bounded time, from a fixed seed, so a run is repeatable.
//
//   fuzz_json CORPUS_DIR... [-seconds=N] [-seed=S]
//
// Exit 0 when every input ran; a crash, a sanitizer report or a failed CHECK ends the
// process as it would under libFuzzer, and the input is in ./fuzz-crash-<target> first.
#include <dirent.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

namespace {

std::string g_crash_path;

void Run(const std::string& input) {
  // Written before the run: when it crashes, the input that did it is on disk.
  if (!g_crash_path.empty()) {
    std::ofstream(g_crash_path, std::ios::binary | std::ios::trunc) << input;
  }
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
}

std::string Mutate(std::string s, std::mt19937_64& rng, const std::vector<std::string>& corpus) {
  static const char* const kTokens[] = {
      "{",        "}",    "[",     "]",  "\"",  ":",  ",", "\\u0000", "\\", "\xff",
      "\xc0\xaf", "null", "1e999", "-0", "%ff", "\n", "=", "/",       "..", "9999-12-31T23:59:59Z"};
  int rounds = 1 + static_cast<int>(rng() % 8);
  for (int r = 0; r < rounds; ++r) {
    size_t at = s.empty() ? 0 : rng() % (s.size() + 1);
    switch (rng() % 7) {
      case 0:  // flip a byte
        if (!s.empty()) s[at % s.size()] = static_cast<char>(rng());
        break;
      case 1:  // delete a run
        if (!s.empty()) s.erase(at % s.size(), 1 + rng() % 16);
        break;
      case 2:  // insert a token
        s.insert(at, kTokens[rng() % (sizeof(kTokens) / sizeof(kTokens[0]))]);
        break;
      case 3:  // duplicate a run
        if (!s.empty()) {
          size_t from = rng() % s.size();
          s.insert(at, s.substr(from, 1 + rng() % 64));
        }
        break;
      case 4:  // splice in part of another input
        if (!corpus.empty()) {
          const std::string& o = corpus[rng() % corpus.size()];
          if (!o.empty()) s.insert(at, o.substr(rng() % o.size(), 1 + rng() % 128));
        }
        break;
      case 5:  // nest deeply
        s.insert(at, std::string(1 + rng() % 400, "[{"[rng() % 2]));
        break;
      default:  // cut
        s.resize(at);
    }
  }
  return s.size() > (1u << 20) ? s.substr(0, 1u << 20) : s;
}

}  // namespace

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize != nullptr) LLVMFuzzerInitialize(&argc, &argv);
  double seconds = 5;
  uint64_t seed = 1;
  std::vector<std::string> corpus;
  std::string name = argv[0];
  name = name.substr(name.find_last_of('/') + 1);
  g_crash_path = "fuzz-crash-" + name;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("-seconds=", 0) == 0) {
      seconds = std::atof(a.c_str() + 9);
      continue;
    }
    if (a.rfind("-seed=", 0) == 0) {
      seed = std::strtoull(a.c_str() + 6, nullptr, 10);
      continue;
    }
    DIR* d = opendir(a.c_str());
    if (d == nullptr) {
      std::fprintf(stderr, "%s: cannot read corpus directory %s\n", name.c_str(), a.c_str());
      return 2;
    }
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      std::ifstream in(a + "/" + e->d_name, std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      corpus.push_back(ss.str());
    }
    closedir(d);
  }
  for (const std::string& input : corpus) Run(input);
  std::mt19937_64 rng(seed);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  uint64_t runs = corpus.size();
  while (std::chrono::steady_clock::now() < deadline) {
    std::string base = corpus.empty() ? std::string() : corpus[rng() % corpus.size()];
    Run(Mutate(base, rng, corpus));
    ++runs;
  }
  std::remove(g_crash_path.c_str());
  std::printf("%s: %llu inputs (%zu from the corpus), no crash\n", name.c_str(),
              static_cast<unsigned long long>(runs), corpus.size());
  return 0;
}
