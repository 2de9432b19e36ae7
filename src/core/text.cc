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

size_t FirstInvalidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    // ASCII runs are the common case: eight bytes at a time.
    while (i + 8 <= s.size()) {
      uint64_t w;
      __builtin_memcpy(&w, s.data() + i, 8);
      if (w & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= s.size()) break;
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    size_t n = SequenceAt(s, i);
    if (n == 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

bool IsValidUtf8(std::string_view s) { return FirstInvalidUtf8(s) == std::string_view::npos; }

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

std::string Shortened(std::string s, size_t max_bytes) {
  if (s.size() <= max_bytes) return s;
  size_t keep = max_bytes;
  // Not inside a character: a continuation byte has 0b10 as its top two bits.
  while (keep > 0 && (static_cast<unsigned char>(s[keep]) & 0xC0) == 0x80) --keep;
  size_t cut = s.size() - keep;
  s.resize(keep);
  s += "... [" + std::to_string(cut) + " bytes more]";
  return s;
}

namespace {

// Whether s[i] begins a C1 control (U+0080-U+009F: 0xC2 0x80-0x9F in UTF-8), which terminals
// may obey as they obey ESC (U+009B is CSI).
bool IsC1At(std::string_view s, size_t i) {
  return static_cast<unsigned char>(s[i]) == 0xC2 && i + 1 < s.size() &&
         static_cast<unsigned char>(s[i + 1]) >= 0x80 &&
         static_cast<unsigned char>(s[i + 1]) <= 0x9F;
}

}  // namespace

std::string PrintableLine(std::string_view s) {
  bool clean = true;
  for (size_t i = 0; clean && i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    clean = c >= 0x20 && c != 0x7F && !IsC1At(s, i);
  }
  if (clean && IsValidUtf8(s)) return std::string(s);
  std::string valid = ValidUtf8(s);
  std::string out;
  out.reserve(valid.size() + 16);
  for (size_t i = 0; i < valid.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(valid[i]);
    char esc[8];
    if (c < 0x20 || c == 0x7F) {
      std::snprintf(esc, sizeof(esc), "\\x%02x", c);
      out += esc;
    } else if (IsC1At(valid, i)) {
      std::snprintf(esc, sizeof(esc), "\\u%04x", static_cast<unsigned char>(valid[++i]));
      out += esc;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

namespace {

// The code point of the UTF-8 sequence at s[i] (of length n), for valid UTF-8.
uint32_t CodePoint(std::string_view s, size_t i, size_t n) {
  auto b = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(s[i + k])); };
  if (n == 1) return b(0);
  if (n == 2) return ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
  if (n == 3) return ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
  return ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
}

// Whether Python's str.isprintable() says no: controls, separators other than the space,
// format characters and private use (the categories Cc, Zs, Zl, Zp, Cf, Co; unassigned code
// points are not known here and count as printable).
bool PythonUnprintable(uint32_t c) {
  if (c < 0x20 || (c >= 0x7F && c <= 0xA0) || c == 0xAD) return true;
  if (c == 0x1680 || (c >= 0x2000 && c <= 0x200F) || (c >= 0x2028 && c <= 0x202F)) return true;
  if ((c >= 0x205F && c <= 0x2064) || (c >= 0x2066 && c <= 0x206F) || c == 0x3000) return true;
  if ((c >= 0x0600 && c <= 0x0605) || c == 0x061C || c == 0x06DD || c == 0x070F) return true;
  if (c == 0x180E || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFB)) return true;
  if ((c >= 0xE000 && c <= 0xF8FF) || c >= 0xF0000) return true;
  return false;
}

}  // namespace

std::string PythonRepr(const std::vector<std::string>& list) {
  std::string out = "[";
  for (size_t k = 0; k < list.size(); ++k) {
    std::string s = ValidUtf8(list[k]);
    // Single quotes, unless the text has one and no double quote.
    char q = s.find('\'') != std::string::npos && s.find('"') == std::string::npos ? '"' : '\'';
    if (k > 0) out += ", ";
    out += q;
    for (size_t i = 0; i < s.size();) {
      size_t n = SequenceAt(s, i);
      uint32_t c = CodePoint(s, i, n);
      char esc[16];
      if (c == '\\' || c == static_cast<uint32_t>(q)) {
        out += '\\';
        out += static_cast<char>(c);
      } else if (c == '\n') {
        out += "\\n";
      } else if (c == '\r') {
        out += "\\r";
      } else if (c == '\t') {
        out += "\\t";
      } else if (PythonUnprintable(c)) {
        std::snprintf(esc, sizeof(esc),
                      c < 0x100     ? "\\x%02x"
                      : c < 0x10000 ? "\\u%04x"
                                    : "\\U%08x",
                      c);
        out += esc;
      } else {
        out.append(s, i, n);
      }
      i += n;
    }
    out += q;
  }
  return out + "]";
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

std::string HexBytes(std::string_view bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) {
    unsigned char b = static_cast<unsigned char>(c);
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  return out;
}

}  // namespace sluice
