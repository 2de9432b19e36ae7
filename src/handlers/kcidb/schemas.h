// The KCIDB I/O schemas 1.1 … 5.3, shipped inside the binary, compiled on first use.
#pragma once

#include <rapidjson/document.h>

#include <string>

#include "core/json_schema.h"
#include "core/status.h"

namespace sluice::kcidb {

struct Version {
  int major = 0;
  int minor = 0;
  std::string ToString() const { return std::to_string(major) + "." + std::to_string(minor); }
};

inline constexpr Version kLatest{5, 3};

// The version a submission declares, read as kcidb-io reads it: {"version": {"major": M,
// "minor": N}} (a missing minor is 0) or, for 1.x only, a string "M" or "M.N" (a missing
// minor is 1). FailedPrecondition naming what was found when it is missing or odd.
Result<Version> DeclaredVersion(const rapidjson::Value& doc);

// The compiled schema to validate a document of version `v` against: the shipped schema of
// exactly that version, as kcidb-io's is_compatible() asks (1.0 is not 1.1).
// FailedPrecondition for versions not shipped.
Result<const JsonSchema*> SchemaFor(Version v);

// The raw text of the shipped latest schema (tables are derived from it).
std::string_view LatestSchemaText();

}  // namespace sluice::kcidb
