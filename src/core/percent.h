// Percent-encoding: every byte but ASCII letters, digits and those in `keep` becomes %XX.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

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

}  // namespace sluice
