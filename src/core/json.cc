// ParseJson: RapidJSON's iterative parser behind a SAX filter that counts nesting.
#include "core/json.h"

#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <unordered_map>
#include <vector>

#include "core/text.h"

namespace sluice {
namespace {

std::atomic<int> g_max_depth{kDefaultMaxJsonDepth};

// Not kParseFullPrecisionFlag: RapidJSON 1.1's full-precision path reads "0e38" as -1.9e227
// (found by fuzz_json); the default path may be one unit in the last place off instead.
// Not kParseValidateEncodingFlag: the whole text is checked once before (CheckText), eight
// ASCII bytes at a time, where RapidJSON decoded every character of every string (a tenth of a
// corpus drain's CPU).
constexpr unsigned kFlags = rapidjson::kParseIterativeFlag;

// Forwards every SAX event to the document being built, and stops the parse (the handler
// returns false) at the first container deeper than `max`. It also notes, by a hash of each
// key, whether an object may hold a key twice, for DropDuplicateKeys.
struct Filter {
  Filter(rapidjson::Document& doc, int max_depth) : d(doc), max(max_depth) {}
  rapidjson::Document& d;
  int max;
  int depth = 0;
  bool too_deep = false;
  bool bad_text = false;
  bool bad_number = false;
  bool maybe_duplicates = false;
  // Key hashes of the open objects, innermost last; where each open object's start.
  std::vector<uint64_t> keys;
  std::vector<size_t> starts;

  bool Null() { return d.Null(); }
  bool Bool(bool b) { return d.Bool(b); }
  bool Int(int i) { return d.Int(i); }
  bool Uint(unsigned i) { return d.Uint(i); }
  bool Int64(int64_t i) { return d.Int64(i); }
  bool Uint64(uint64_t i) { return d.Uint64(i); }
  // RapidJSON reads some huge numbers ("92233720368e308") as infinity without a word, and
  // cannot write infinity back as JSON (found by fuzz_json): refused here.
  bool Double(double x) {
    if (std::isfinite(x)) return d.Double(x);
    bad_number = true;
    return false;
  }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool copy) {
    return d.RawNumber(s, n, copy);
  }
  bool String(const char* s, rapidjson::SizeType n, bool copy) {
    return Text(s, n) && d.String(s, n, copy);
  }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) {
    if (!Text(s, n)) return false;
    if (!maybe_duplicates) NoteKey(s, n);
    return d.Key(s, n, copy);
  }
  // RapidJSON checks the bytes of the text, but turns an escaped lone low surrogate
  // ("\udc00") into bytes that are not UTF-8 (ED B0 80): refused, so every string read is
  // UTF-8. memchr finds the rare 0xED fast.
  bool Text(const char* s, rapidjson::SizeType n) {
    for (const char* p = s; (p = static_cast<const char*>(std::memchr(p, 0xED, s + n - p))); ++p) {
      if (p + 1 < s + n && static_cast<unsigned char>(p[1]) >= 0xA0) {
        bad_text = true;
        return false;
      }
    }
    return true;
  }
  // A key whose hash the open object has seen: maybe the same key (checked exactly later).
  // Past 64 keys an object is not looked through any more (that would be quadratic): it is
  // checked exactly later, like one with a repeat.
  void NoteKey(const char* s, size_t n) {
    uint64_t h = 1469598103934665603ull;  // FNV-1a
    for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<unsigned char>(s[i])) * 1099511628211ull;
    size_t start = starts.back();
    if (keys.size() - start >= 64) {
      maybe_duplicates = true;
      return;
    }
    for (size_t i = start; i < keys.size(); ++i) {
      if (keys[i] == h) {
        maybe_duplicates = true;
        return;
      }
    }
    keys.push_back(h);
  }
  bool StartObject() {
    if (!Enter()) return false;
    starts.push_back(keys.size());
    return d.StartObject();
  }
  bool EndObject(rapidjson::SizeType n) {
    --depth;
    keys.resize(starts.back());
    starts.pop_back();
    return d.EndObject(n);
  }
  bool StartArray() { return Enter() && d.StartArray(); }
  bool EndArray(rapidjson::SizeType n) {
    --depth;
    return d.EndArray(n);
  }
  bool Enter() {
    if (++depth <= max) return true;
    too_deep = true;
    return false;
  }
};

// A key given twice in one object keeps its first place and takes its last value, as
// Python's json module (the reference) reads it: what is validated is what is stored.
// Iterative, over the whole document; run only when the parse saw a possible repeat.
void DropDuplicateKeys(rapidjson::Value* root) {
  std::vector<rapidjson::Value*> todo{root};
  std::unordered_map<std::string_view, rapidjson::Value*> seen;
  while (!todo.empty()) {
    rapidjson::Value* v = todo.back();
    todo.pop_back();
    if (v->IsArray()) {
      for (auto& e : v->GetArray()) todo.push_back(&e);
      continue;
    }
    if (!v->IsObject()) continue;
    seen.clear();
    for (auto m = v->MemberBegin(); m != v->MemberEnd();) {
      auto [it, fresh] = seen.emplace(JsonView(m->name), &m->value);
      if (fresh) {
        ++m;
        continue;
      }
      *it->second = std::move(m->value);  // the last value, at the first place
      m = v->EraseMember(m);
    }
    for (auto& m : v->GetObject()) todo.push_back(&m.value);
  }
}

template <unsigned Flags, typename Stream>
Status Parse(Stream& stream, rapidjson::Document* doc, int max_depth, JsonParseError* error) {
  int max = max_depth > 0 ? max_depth : g_max_depth.load(std::memory_order_relaxed);
  Filter filter(*doc, max);
  rapidjson::ParseResult result;
  auto generate = [&](rapidjson::Document&) {
    rapidjson::Reader reader;
    result = reader.Parse<Flags>(stream, filter);
    return !result.IsError();
  };
  doc->Populate(generate);
  if (error != nullptr) *error = JsonParseError{filter.too_deep, result.Offset()};
  if (filter.too_deep) {
    doc->SetNull();
    return Status::InvalidArgument("JSON nested deeper than " + std::to_string(max) +
                                   " levels (at byte " + std::to_string(result.Offset()) +
                                   "; --max-json-depth)");
  }
  if (!result.IsError() && filter.maybe_duplicates) DropDuplicateKeys(doc);
  if (filter.bad_number) {
    doc->SetNull();
    return Status::InvalidArgument("not valid JSON: a number too large for a double before byte " +
                                   std::to_string(result.Offset()));
  }
  if (filter.bad_text) {
    doc->SetNull();
    return Status::InvalidArgument(
        "not valid JSON: a \\u escape of a lone surrogate (not text) "
        "before byte " +
        std::to_string(result.Offset()));
  }
  if (result.IsError()) {
    doc->SetNull();
    return Status::InvalidArgument(std::string("not valid JSON: ") +
                                   rapidjson::GetParseError_En(result.Code()) + " at byte " +
                                   std::to_string(result.Offset()));
  }
  return Status::Ok();
}

}  // namespace

void SetMaxJsonDepth(int depth) {
  g_max_depth = depth < 1 ? 1 : depth > kMaxMaxJsonDepth ? kMaxMaxJsonDepth : depth;
}

int MaxJsonDepth() { return g_max_depth.load(std::memory_order_relaxed); }

// What RapidJSON is not asked to see: a raw NUL (JSON text never holds one, in a string it
// must be escaped; RapidJSON would take it for the end of the text and ignore what follows,
// found by fuzz_json) and bytes that are not UTF-8 (RFC 8259: JSON text is UTF-8).
Status CheckText(std::string_view text, JsonParseError* error) {
  size_t at = std::string_view::npos;
  std::string what;
  if (const void* nul = std::memchr(text.data(), 0, text.size())) {
    at = static_cast<const char*>(nul) - text.data();
    what = "a NUL byte";
  }
  size_t bad = FirstInvalidUtf8(text.substr(0, at));
  if (bad != std::string_view::npos) {
    at = bad;
    what = "Invalid encoding in string.";
  }
  if (at == std::string_view::npos) return Status::Ok();
  if (error != nullptr) *error = JsonParseError{false, at};
  return Status::InvalidArgument("not valid JSON: " + what + " at byte " + std::to_string(at));
}

Status ParseJson(std::string_view text, rapidjson::Document* doc, int max_depth,
                 JsonParseError* error) {
  if (Status st = CheckText(text, error); !st.ok()) {
    doc->SetNull();
    return st;
  }
  // A plain stream, not RapidJSON's EncodedInputStream: that one skips a byte order mark,
  // and any of its three bytes alone ("\xBF2" read as 2; found by fuzz_json), where the
  // reference and the in-place reader refuse them.
  rapidjson::MemoryStream stream(text.data(), text.size());
  return Parse<kFlags>(stream, doc, max_depth, error);
}

Status ParseJsonInsitu(std::string* text, rapidjson::Document* doc, int max_depth,
                       JsonParseError* error) {
  // In place, the text ends at its NUL: one inside it would cut the document short.
  SLUICE_RETURN_IF_ERROR(CheckText(*text, error));
  text->append(4, '\0');  // RapidJSON reads the text up to its NUL
  rapidjson::InsituStringStream stream(text->data());
  return Parse<kFlags | rapidjson::kParseInsituFlag>(stream, doc, max_depth, error);
}

std::string WriteJson(const rapidjson::Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

std::string JsonQuote(std::string_view s) {
  std::string valid = ValidUtf8(s);
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.String(valid.data(), static_cast<rapidjson::SizeType>(valid.size()));
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace sluice
