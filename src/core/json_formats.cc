// Hand-written format checkers: no std::regex, no allocation, one pass each.
#include "core/json_formats.h"

#include <cctype>
#include <cstdint>

namespace sluice {
namespace {

bool Digits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    char c = s[pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

int DaysIn(int year, int month) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : kDays[month - 1];
}

bool IsHex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsUnreserved(char c) {
  return IsAlpha(c) || IsDigit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}
bool IsSubDelim(char c) {
  switch (c) {
    case '!':
    case '$':
    case '&':
    case '\'':
    case '(':
    case ')':
    case '*':
    case '+':
    case ',':
    case ';':
    case '=':
      return true;
    default:
      return false;
  }
}

// Consumes characters of s[*pos..end) while each is unreserved, a sub-delim, one of `extra`,
// or a valid %XX escape. False on a bad escape.
bool Span(std::string_view s, size_t* pos, size_t end, std::string_view extra) {
  while (*pos < end) {
    char c = s[*pos];
    if (c == '%') {
      if (*pos + 2 >= end) return false;
      if (!IsHex(s[*pos + 1]) || !IsHex(s[*pos + 2])) return false;
      *pos += 3;
      continue;
    }
    if (IsUnreserved(c) || IsSubDelim(c) || extra.find(c) != std::string_view::npos) {
      ++*pos;
      continue;
    }
    break;
  }
  return true;
}

bool IsIPv4(std::string_view s) {
  int parts = 0;
  size_t i = 0;
  while (true) {
    size_t start = i;
    int v = 0;
    while (i < s.size() && IsDigit(s[i])) v = v * 10 + (s[i++] - '0');
    size_t len = i - start;
    if (len == 0 || len > 3 || v > 255 || (len > 1 && s[start] == '0')) return false;
    ++parts;
    if (i == s.size()) break;
    if (s[i] != '.') return false;
    ++i;
  }
  return parts == 4;
}

bool IsIPv6(std::string_view s) {
  int groups = 0;
  bool gap = false;
  size_t i = 0;
  if (s.substr(0, 2) == "::") {
    gap = true;
    i = 2;
    if (i == s.size()) return true;
  } else if (!s.empty() && s[0] == ':') {
    return false;
  }
  while (i < s.size()) {
    size_t start = i;
    while (i < s.size() && IsHex(s[i])) ++i;
    size_t len = i - start;
    if (i < s.size() && s[i] == '.') {  // trailing IPv4
      if (!IsIPv4(s.substr(start))) return false;
      groups += 2;
      i = s.size();
      break;
    }
    if (len == 0 || len > 4) return false;
    ++groups;
    if (i == s.size()) break;
    if (s[i] != ':') return false;
    ++i;
    if (i < s.size() && s[i] == ':') {
      if (gap) return false;
      gap = true;
      ++i;
      if (i == s.size()) break;
    } else if (i == s.size()) {
      return false;
    }
  }
  return gap ? groups < 8 : groups == 8;
}

bool IsIpLiteral(std::string_view s) {
  if (!s.empty() && (s[0] == 'v' || s[0] == 'V')) {  // IPvFuture
    size_t i = 1, start = 1;
    while (i < s.size() && IsHex(s[i])) ++i;
    if (i == start || i >= s.size() || s[i] != '.') return false;
    ++i;
    if (i >= s.size()) return false;
    for (; i < s.size(); ++i) {
      if (!IsUnreserved(s[i]) && !IsSubDelim(s[i]) && s[i] != ':') return false;
    }
    return true;
  }
  return IsIPv6(s);
}

bool IsAuthority(std::string_view a) {
  size_t at = a.rfind('@');
  size_t pos = 0;
  if (at != std::string_view::npos) {
    if (!Span(a, &pos, at, ":") || pos != at) return false;
    pos = at + 1;
  }
  std::string_view hostport = a.substr(pos);
  std::string_view port;
  if (!hostport.empty() && hostport[0] == '[') {
    size_t close = hostport.find(']');
    if (close == std::string_view::npos || !IsIpLiteral(hostport.substr(1, close - 1))) {
      return false;
    }
    std::string_view rest = hostport.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return false;
      port = rest.substr(1);
    }
  } else {
    size_t colon = hostport.rfind(':');
    std::string_view host = hostport.substr(0, colon);
    if (colon != std::string_view::npos) port = hostport.substr(colon + 1);
    size_t hp = 0;
    if (!Span(host, &hp, host.size(), "") || hp != host.size()) return false;
  }
  for (char c : port) {
    if (!IsDigit(c)) return false;
  }
  return true;
}

// The reference checks formats with Python regular expressions ending in "$", which also
// match before one final newline; so do we, to agree with it.
std::string_view DropFinalNewline(std::string_view s) {
  return !s.empty() && s.back() == '\n' ? s.substr(0, s.size() - 1) : s;
}

}  // namespace

bool IsRfc3339DateTime(std::string_view s) {
  s = DropFinalNewline(s);
  int year, month, day, hour, minute, second;
  if (!Digits(s, 0, 4, &year) || s.size() < 20 || s[4] != '-' || !Digits(s, 5, 2, &month) ||
      s[7] != '-' || !Digits(s, 8, 2, &day) || (s[10] != 'T' && s[10] != 't') ||
      !Digits(s, 11, 2, &hour) || s[13] != ':' || !Digits(s, 14, 2, &minute) || s[16] != ':' ||
      !Digits(s, 17, 2, &second)) {
    return false;
  }
  // As kcidb-io checks it in production (jsonschema with rfc3339-validator): no year 0, no
  // leap second.
  if (year == 0 || month < 1 || month > 12 || day < 1 || day > DaysIn(year, month)) return false;
  if (hour > 23 || minute > 59 || second > 59) return false;
  size_t i = 19;
  if (i < s.size() && s[i] == '.') {
    size_t start = ++i;
    while (i < s.size() && IsDigit(s[i])) ++i;
    if (i == start) return false;
  }
  if (i >= s.size()) return false;
  if (s[i] == 'Z' || s[i] == 'z') return i + 1 == s.size();
  if (s[i] != '+' && s[i] != '-') return false;
  int oh, om;
  if (!Digits(s, i + 1, 2, &oh) || i + 3 >= s.size() || s[i + 3] != ':' ||
      !Digits(s, i + 4, 2, &om)) {
    return false;
  }
  return oh <= 23 && om <= 59 && i + 6 == s.size();
}

bool IsRfc3986Uri(std::string_view s) {
  s = DropFinalNewline(s);
  // scheme ":" hier-part [ "?" query ] [ "#" fragment ]
  if (s.empty() || !IsAlpha(s[0])) return false;
  size_t i = 1;
  while (i < s.size() &&
         (IsAlpha(s[i]) || IsDigit(s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.')) {
    ++i;
  }
  if (i >= s.size() || s[i] != ':') return false;
  ++i;
  size_t end = s.find_first_of("?#", i);
  if (end == std::string_view::npos) end = s.size();
  std::string_view hier = s.substr(i, end - i);
  size_t pos = 0;
  if (hier.substr(0, 2) == "//") {
    size_t slash = hier.find('/', 2);
    std::string_view authority =
        hier.substr(2, slash == std::string_view::npos ? std::string_view::npos : slash - 2);
    if (!IsAuthority(authority)) return false;
    pos = slash == std::string_view::npos ? hier.size() : slash;
  }
  // path: segments of pchar separated by '/'
  if (!Span(hier, &pos, hier.size(), ":@/") || pos != hier.size()) return false;
  // query and fragment: pchar / "/" / "?"
  size_t q = end;
  if (q < s.size() && s[q] == '?') {
    size_t hash = s.find('#', q + 1);
    size_t qend = hash == std::string_view::npos ? s.size() : hash;
    size_t p = q + 1;
    if (!Span(s, &p, qend, ":@/?") || p != qend) return false;
    q = qend;
  }
  if (q < s.size() && s[q] == '#') {
    size_t p = q + 1;
    if (!Span(s, &p, s.size(), ":@/?") || p != s.size()) return false;
  }
  return true;
}

bool IsEmail(std::string_view s) { return s.find('@') != std::string_view::npos; }

}  // namespace sluice
