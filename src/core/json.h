// The one reader of JSON text that did not come from Sluice itself: request bodies, spool
// files, queuedir items, task arguments, stored payloads.
//
// It parses without recursion (RapidJSON's iterative parser), checks UTF-8, and refuses a
// document nested deeper than a limit while it parses (a SAX filter in front of the
// document), so no later walk over the document (writing it out, validating it, comparing
// it) can recurse deeper than the limit. The limit is process-wide (--max-json-depth).
//
// Strings may hold escaped NUL bytes ("q\u0000x"): read them with JsonStr(), which keeps
// the length, never with GetString() alone.
#pragma once

#include <rapidjson/document.h>

#include <string>
#include <string_view>

#include "core/status.h"

namespace sluice {

// The default depth limit: far above any real document (KCIDB's is about 8), far below what
// a thread's stack can take.
constexpr int kDefaultMaxJsonDepth = 256;
constexpr int kMaxMaxJsonDepth = 10000;

// The process-wide limit. Set once at start (--max-json-depth), read by every parse.
void SetMaxJsonDepth(int depth);
int MaxJsonDepth();

// What went wrong, for callers that report more than the message.
struct JsonParseError {
  bool too_deep = false;  // nested deeper than the limit (otherwise: not JSON, or not UTF-8)
  size_t offset = 0;      // the byte where parsing stopped
};

// Parses `text` into *doc. InvalidArgument, with the byte offset, when it is not JSON, not
// UTF-8, or nested deeper than `max_depth` (0: the process-wide limit); *doc is null then.
Status ParseJson(std::string_view text, rapidjson::Document* doc, int max_depth = 0,
                 JsonParseError* error = nullptr);

// The same, parsing in place: the document's strings point into *text, which must outlive
// it. NUL bytes are added at its end (a text holding one is not JSON).
Status ParseJsonInsitu(std::string* text, rapidjson::Document* doc, int max_depth = 0,
                       JsonParseError* error = nullptr);
// A string value whole, NUL bytes included.
inline std::string JsonStr(const rapidjson::Value& v) {
  return std::string(v.GetString(), v.GetStringLength());
}
inline std::string_view JsonView(const rapidjson::Value& v) {
  return std::string_view(v.GetString(), v.GetStringLength());
}

// `v` as compact JSON text.
std::string WriteJson(const rapidjson::Value& v);

// `s` as a quoted JSON string ("a\"b"), bytes that are not UTF-8 replaced by U+FFFD.
std::string JsonQuote(std::string_view s);

}  // namespace sluice
