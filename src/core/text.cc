// UTF-8 checks by hand (RFC 3629's table), so every byte of every response is accounted for.
#include "core/text.h"

#include <cstdio>

namespace sluice {
namespace {

// Length of the well-formed UTF-8 sequence at s[i], or 0 when there is none.
size_t SequenceAt(std::string_view s, size_t i) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  unsigned char c = b(0);
  if (c < 0x80) return 1;
  size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
  if (n == 0 || c > 0xF4 || i + n > s.size()) return 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
  if (c == 0xE0) lo = 0xA0;            // no overlong 3-byte forms
  if (c == 0xED) hi = 0x9F;            // no surrogates
  if (c == 0xF0) lo = 0x90;            // no overlong 4-byte forms
  if (c == 0xF4) hi = 0x8F;            // nothing above U+10FFFF
  if (b(1) < lo || b(1) > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    if ((b(k) & 0xC0) != 0x80) return 0;
  }
  return n;
}

}  // namespace

bool IsValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    // ASCII runs are the common case: eight bytes at a time.
    while (i + 8 <= s.size()) {
      uint64_t w;
      __builtin_memcpy(&w, s.data() + i, 8);
      if (w & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= s.size()) break;
    size_t n = SequenceAt(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string ValidUtf8(std::string_view s) {
  if (IsValidUtf8(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  for (size_t i = 0; i < s.size();) {
    size_t n = SequenceAt(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

std::string PrintableLine(std::string_view s) {
  bool clean = true;
  for (unsigned char c : s) clean = clean && c >= 0x20 && c != 0x7F;
  if (clean && IsValidUtf8(s)) return std::string(s);
  std::string valid = ValidUtf8(s);
  std::string out;
  out.reserve(valid.size() + 16);
  for (unsigned char c : valid) {
    if (c < 0x20 || c == 0x7F) {
      char esc[8];
      std::snprintf(esc, sizeof(esc), "\\x%02x", c);
      out += esc;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

Status CheckName(std::string_view what, std::string_view s, size_t max_bytes) {
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument(std::string(what) + " " + why + " (a name is 1 to " +
                                   std::to_string(max_bytes) +
                                   " bytes of UTF-8 without control characters)");
  };
  if (s.empty()) return bad("is empty");
  if (s.size() > max_bytes) return bad("is " + std::to_string(s.size()) + " bytes long");
  if (!IsValidUtf8(s)) return bad("is not valid UTF-8");
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    bool c1 = c == 0xC2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) < 0xA0;
    if (c < 0x20 || c == 0x7F || c1) return bad("holds a control character");
  }
  return Status::Ok();
}

}  // namespace sluice
