// Percent-encoding: every byte but ASCII letters, digits and those in `keep` becomes %XX;
// and back (%XX to the byte; '+' to a space when `plus_is_space`, as in a query string).
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

#include "core/status.h"

namespace sluice {

inline std::string PercentEncode(std::string_view s, std::string_view keep) {
  std::string out;
  for (unsigned char c : s) {
    if (isalnum(c) || keep.find(static_cast<char>(c)) != std::string_view::npos) {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof(buf), "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

inline int HexDigitValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// InvalidArgument "bad %-escape in `what`" when a '%' is not followed by two hex digits.
inline Result<std::string> PercentDecode(std::string_view s, bool plus_is_space,
                                         std::string_view what) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size() || HexDigitValue(s[i + 1]) < 0 || HexDigitValue(s[i + 2]) < 0) {
        return Status::InvalidArgument("bad %-escape in " + std::string(what));
      }
      out += static_cast<char>(HexDigitValue(s[i + 1]) * 16 + HexDigitValue(s[i + 2]));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace sluice
