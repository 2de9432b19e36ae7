// Checks for the JSON Schema "format" values the KCIDB schemas use, written to agree with the
// Python reference (jsonschema with rfc3339-validator and rfc3987):
//   date-time: RFC 3339 section 5.6, case-insensitive T and Z, real calendar days, second 60.
//   uri:       RFC 3986 "URI" (absolute: a scheme is required), ASCII only.
//   email:     contains "@" (what the reference checks, nothing stricter).
// Like the reference's regular expressions, date-time and uri accept one final newline.
#pragma once

#include <string_view>

namespace sluice {

bool IsRfc3339DateTime(std::string_view s);
bool IsRfc3986Uri(std::string_view s);
bool IsEmail(std::string_view s);

}  // namespace sluice
