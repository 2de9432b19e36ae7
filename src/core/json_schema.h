// JsonSchema: a JSON Schema (draft 7) compiled once into a tree of checks, then run on many
// documents. Built for KCIDB's hot path: patterns run on RE2 (the ubiquitous "^[^\0]*$" is a
// NUL scan), formats are hand-written (core/json_formats.h), no regex is built per value.
//
// Supported keywords: type, enum, const, properties, patternProperties, additionalProperties,
// required, propertyNames, minProperties, maxProperties, dependencies, items (single and tuple),
// additionalItems, contains, minItems, maxItems, uniqueItems, minimum, maximum,
// exclusiveMinimum, exclusiveMaximum, multipleOf, minLength, maxLength, pattern, format
// (date-time, uri, email; others are accepted unchecked as draft 7 allows), allOf, anyOf, oneOf,
// not, if/then/else, boolean schemas, and $ref to "#..." JSON pointers (with $defs and
// definitions). Remote $ref and $id-based resolution are not supported: Compile() rejects them.
//
// Patterns follow Python's `re.search`, as the reference validator does: "$" also matches
// before a final newline.
//
// Thread safety: a compiled JsonSchema is immutable; Validate() may run on many threads at once.
#pragma once

#include <rapidjson/document.h>

#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"

namespace sluice {

struct SchemaError {
  std::string instance_path;  // JSON pointer into the document, e.g. "/tests/3/path"
  std::string schema_path;    // where in the schema, e.g. "/$defs/test/properties/path/pattern"
  std::string message;        // e.g. "'a b' does not match '^[.a-zA-Z0-9_-]*$'"
};

class JsonSchema {
 public:
  ~JsonSchema();
  JsonSchema(const JsonSchema&) = delete;
  JsonSchema& operator=(const JsonSchema&) = delete;

  // Compiles `schema_json`. InvalidArgument when it is not JSON, not a schema, uses a pattern
  // RE2 cannot run, or a $ref this validator cannot resolve.
  static Result<std::unique_ptr<JsonSchema>> Compile(std::string_view schema_json);

  // True when `doc` is valid. Otherwise false, and *error (if not null) describes the first
  // violation found.
  bool Validate(const rapidjson::Value& doc, SchemaError* error) const;

  struct Impl;

 private:
  explicit JsonSchema(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// JSON equality as JSON Schema defines it: numbers by value (1 == 1.0), objects regardless of
// member order.
bool JsonEqual(const rapidjson::Value& a, const rapidjson::Value& b);

// Translates a JSON Schema pattern (Python/ECMA dialect) to RE2 syntax. Exposed for tests.
std::string TranslatePattern(std::string_view pattern);

}  // namespace sluice
