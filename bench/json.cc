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
//   simdjson:   Debian's simdjson (3.0), the same documents: its DOM parser, and On-Demand
//               with every key, string and number read (as the kcidb handler must read them;
//               On-Demand left unread parses next to nothing). On-Demand runs the kernel
//               the file is compiled for, so this file is built for Haswell (AVX2, BMI,
//               PCLMUL) on x86-64 (CMakeLists.txt); its DOM picks the best kernel at run time.
// and the time to refuse a 10 MB document nested 5 million levels deep.
#include "core/json.h"

#include <rapidjson/document.h>
#include <simdjson.h>

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

// Median seconds of `rounds` runs of `fn` over inputs it does not change.
template <typename T, typename Fn>
double TimeReadOnly(const std::vector<T>& docs, int rounds, Fn fn) {
  std::vector<double> t;
  for (int r = 0; r < rounds; ++r) {
    auto start = Clock_::now();
    for (const T& d : docs) fn(d);
    t.push_back(std::chrono::duration<double>(Clock_::now() - start).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

namespace od = simdjson::ondemand;
#define SLUICE_STR2(x) #x
#define SLUICE_STR(x) SLUICE_STR2(x)
const char* const kOnDemandKernel = SLUICE_STR(SIMDJSON_BUILTIN_IMPLEMENTATION);

// Reads every value under `v`; `bytes` counts what was read, so nothing is skipped.
simdjson::error_code ReadAll(od::value v, size_t* bytes) {
  od::json_type type;
  simdjson::error_code e = v.type().get(type);
  if (e) return e;
  switch (type) {
    case od::json_type::object: {
      od::object o;
      if ((e = v.get_object().get(o))) return e;
      for (auto member : o) {
        od::field f;
        std::string_view key;
        if ((e = std::move(member).get(f)) || (e = f.unescaped_key().get(key))) return e;
        *bytes += key.size();
        if ((e = ReadAll(f.value(), bytes))) return e;
      }
      return simdjson::SUCCESS;
    }
    case od::json_type::array: {
      od::array a;
      if ((e = v.get_array().get(a))) return e;
      for (auto item : a) {
        od::value child;
        if ((e = std::move(item).get(child)) || (e = ReadAll(child, bytes))) return e;
      }
      return simdjson::SUCCESS;
    }
    case od::json_type::string: {
      std::string_view str;
      if ((e = v.get_string().get(str))) return e;
      *bytes += str.size();
      return simdjson::SUCCESS;
    }
    case od::json_type::number: {
      od::number n;
      if ((e = v.get_number().get(n))) return e;
      *bytes += 8;
      return simdjson::SUCCESS;
    }
    case od::json_type::boolean: {
      bool b;
      if ((e = v.get_bool().get(b))) return e;
      *bytes += b;
      return simdjson::SUCCESS;
    }
    case od::json_type::null:
      return v.is_null() ? simdjson::SUCCESS : simdjson::INCORRECT_TYPE;
  }
  return simdjson::INCORRECT_TYPE;
}

// The same over simdjson's DOM.
size_t ReadAll(simdjson::dom::element el) {
  switch (el.type()) {
    case simdjson::dom::element_type::OBJECT: {
      simdjson::dom::object o;
      size_t n = 0;
      if (el.get(o)) return n;
      for (auto [key, value] : o) n += key.size() + ReadAll(value);
      return n;
    }
    case simdjson::dom::element_type::ARRAY: {
      simdjson::dom::array a;
      size_t n = 0;
      if (el.get(a)) return n;
      for (auto item : a) n += ReadAll(item);
      return n;
    }
    case simdjson::dom::element_type::STRING: {
      std::string_view str;
      return el.get(str) ? 0 : str.size();
    }
    default:
      return 8;
  }
}

}  // namespace

int main(int argc, char** argv) {
#if defined(__x86_64__) && defined(__AVX2__)
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("bmi2") ||
      !__builtin_cpu_supports("pclmul")) {
    std::printf("json    not run: built for Haswell's instructions, which this CPU lacks\n");
    return 1;
  }
#endif
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
  std::vector<simdjson::padded_string> padded;
  for (const std::string& d : docs) padded.emplace_back(d);
  size_t read_bytes = 0, dom_bytes = 0;
  simdjson::dom::parser dom_parser;
  double sj_dom = TimeReadOnly(padded, rounds, [&](const simdjson::padded_string& d) {
    simdjson::dom::element root;
    if (dom_parser.parse(d).get(root)) {
      failures++;
      return;
    }
    dom_bytes += ReadAll(root);
  });
  od::parser od_parser;
  double sj_od = TimeReadOnly(padded, rounds, [&](const simdjson::padded_string& d) {
    od::document doc;
    od::value root;
    if (od_parser.iterate(d).get(doc) || doc.get_value().get(root) || ReadAll(root, &read_bytes)) {
      failures++;
    }
  });
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
  std::printf("json    simdjson DOM        %.3f s  %6.0f MB/s  (%+.1f%% vs rapidjson)\n", sj_dom,
              mb / sj_dom, (sj_dom / raw - 1) * 100);
  std::printf(
      "json    simdjson On-Demand  %.3f s  %6.0f MB/s  (%+.1f%% vs rapidjson; every value "
      "read: %.1f MB of keys, strings and numbers, DOM %.1f MB)\n",
      sj_od, mb / sj_od, (sj_od / raw - 1) * 100, read_bytes / 1e6 / rounds,
      dom_bytes / 1e6 / rounds);
  std::printf("json    simdjson kernels: DOM %s, On-Demand %s\n",
              simdjson::get_active_implementation()->name().c_str(), kOnDemandKernel);
  std::printf("json    refusing 10 MB nested 5,000,000 deep: %s in %.2f ms\n",
              refused ? "refused" : "NOT refused", refuse_ms);
  std::printf("json    peak RSS %.0f MB\n", bench::PeakRssMb());
  return failures == 0 && refused ? 0 : 1;
}
