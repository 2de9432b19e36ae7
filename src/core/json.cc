// ParseJson: RapidJSON's iterative parser behind a SAX filter that counts nesting.
#include "core/json.h"

#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <atomic>
#include <cstring>

#include "core/text.h"

namespace sluice {
namespace {

std::atomic<int> g_max_depth{kDefaultMaxJsonDepth};

constexpr unsigned kFlags = rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag;

// Forwards every SAX event to the document being built, and stops the parse (the handler
// returns false) at the first container deeper than `max`.
struct DepthFilter {
  rapidjson::Document& d;
  int max;
  int depth = 0;
  bool too_deep = false;

  bool Null() { return d.Null(); }
  bool Bool(bool b) { return d.Bool(b); }
  bool Int(int i) { return d.Int(i); }
  bool Uint(unsigned i) { return d.Uint(i); }
  bool Int64(int64_t i) { return d.Int64(i); }
  bool Uint64(uint64_t i) { return d.Uint64(i); }
  bool Double(double x) { return d.Double(x); }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool copy) {
    return d.RawNumber(s, n, copy);
  }
  bool String(const char* s, rapidjson::SizeType n, bool copy) { return d.String(s, n, copy); }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) { return d.Key(s, n, copy); }
  bool StartObject() { return Enter() && d.StartObject(); }
  bool EndObject(rapidjson::SizeType n) {
    --depth;
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

template <unsigned Flags, typename Stream>
Status Parse(Stream& stream, rapidjson::Document* doc, int max_depth, JsonParseError* error) {
  int max = max_depth > 0 ? max_depth : g_max_depth.load(std::memory_order_relaxed);
  DepthFilter filter{*doc, max};
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

Status ParseJson(std::string_view text, rapidjson::Document* doc, int max_depth,
                 JsonParseError* error) {
  rapidjson::MemoryStream ms(text.data(), text.size());
  rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> stream(ms);
  return Parse<kFlags>(stream, doc, max_depth, error);
}

Status ParseJsonInsitu(char* text, size_t size, rapidjson::Document* doc, int max_depth,
                       JsonParseError* error) {
  // In place, the text ends at its NUL: one inside it would cut the document short.
  if (const void* nul = std::memchr(text, 0, size)) {
    if (error != nullptr)
      *error = JsonParseError{false, size_t(static_cast<const char*>(nul) - text)};
    return Status::InvalidArgument("not valid JSON: a NUL byte at byte " +
                                   std::to_string(static_cast<const char*>(nul) - text));
  }
  rapidjson::InsituStringStream stream(text);
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
