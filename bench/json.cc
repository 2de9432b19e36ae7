// bench/json: what reading untrusted JSON safely costs (core/json.h), on the 500-file corpus.
//
//   build/bench_json [--zip PATH] [--rounds N]
//
// For the whole corpus, in memory, N rounds (default 5), median reported:
//   rapidjson:  RapidJSON's in-place iterative parse with UTF-8 checks (what the kcidb handler
//               did before: no depth limit while parsing, no key or surrogate checks)
//   insitu:     ParseJsonInsitu (depth limit, lone-surrogate check, repeated-key check)
//   copy:       ParseJson (the same, not in place: request bodies, exec and publish files)
//   utf8:       IsValidUtf8 over the corpus (the check every JSON answer gets)
// and the time to refuse a 10 MB document nested 5 million levels deep.
#include "core/json.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "core/text.h"

namespace fs = std::filesystem;
using namespace sluice;  // NOLINT
using Clock_ = std::chrono::steady_clock;

namespace {

std::vector<std::string> LoadCorpus(const std::string& zip) {
  std::vector<std::string> docs;
  std::string dir = bench::FreshDir("json");
  std::string cmd = "unzip -q -j -o '" + zip + "' '*.json' -d '" + dir + "/spool'";
  if (std::system(cmd.c_str()) != 0) return docs;
  for (const auto& e : fs::directory_iterator(dir + "/spool")) {
    std::ifstream in(e.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    docs.push_back(ss.str());
  }
  fs::remove_all(dir);
  return docs;
}

// Median seconds of `rounds` runs of `fn` over every document.
template <typename Fn>
double Time(const std::vector<std::string>& docs, int rounds, Fn fn) {
  std::vector<double> t;
  for (int r = 0; r < rounds; ++r) {
    std::vector<std::string> copies = docs;  // in-place parsing consumes its input
    auto start = Clock_::now();
    for (std::string& d : copies) fn(d);
    t.push_back(std::chrono::duration<double>(Clock_::now() - start).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::string zip = std::string(SLUICE_SOURCE_DIR) + "/../shared/kcidb/submissions.zip";
  int rounds = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--zip") zip = argv[i + 1];
    if (a == "--rounds") rounds = std::max(1, std::atoi(argv[i + 1]));
  }
  std::vector<std::string> docs = LoadCorpus(zip);
  if (docs.empty()) {
    std::printf("json    skipped: no corpus at %s\n", zip.c_str());
    return 0;
  }
  double mb = 0;
  for (const std::string& d : docs) mb += d.size() / 1e6;
  int failures = 0;
  double raw = Time(docs, rounds, [&](std::string& d) {
    rapidjson::Document doc;
    d.push_back('\0');
    doc.ParseInsitu<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag>(
        d.data());
    failures += doc.HasParseError();
  });
  double insitu = Time(docs, rounds, [&](std::string& d) {
    rapidjson::Document doc;
    failures += !ParseJsonInsitu(&d, &doc).ok();
  });
  double copy = Time(docs, rounds, [&](std::string& d) {
    rapidjson::Document doc;
    failures += !ParseJson(d, &doc).ok();
  });
  double utf8 = Time(docs, rounds, [&](std::string& d) { failures += !IsValidUtf8(d); });
  std::string deep(5'000'000, '[');
  deep += std::string(5'000'000, ']');
  auto start = Clock_::now();
  rapidjson::Document doc;
  bool refused = !ParseJson(deep, &doc).ok();
  double refuse_ms = std::chrono::duration<double>(Clock_::now() - start).count() * 1e3;
  std::printf("json    corpus: %zu files, %.1f MB, %d rounds (median); %d parse failures\n",
              docs.size(), mb, rounds, failures);
  std::printf("json    rapidjson in place  %.3f s  %6.0f MB/s\n", raw, mb / raw);
  std::printf("json    ParseJsonInsitu     %.3f s  %6.0f MB/s  (%+.1f%% vs rapidjson)\n", insitu,
              mb / insitu, (insitu / raw - 1) * 100);
  std::printf("json    ParseJson (copy)    %.3f s  %6.0f MB/s  (%+.1f%% vs rapidjson)\n", copy,
              mb / copy, (copy / raw - 1) * 100);
  std::printf("json    IsValidUtf8         %.3f s  %6.0f MB/s\n", utf8, mb / utf8);
  std::printf("json    refusing 10 MB nested 5,000,000 deep: %s in %.2f ms\n",
              refused ? "refused" : "NOT refused", refuse_ms);
  std::printf("json    peak RSS %.0f MB\n", bench::PeakRssMb());
  return failures == 0 && refused ? 0 : 1;
}
