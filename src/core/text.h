// Text that came from outside: UTF-8 checks, repair for output, and the one rule for names
// and ids (task ids, queue names, kinds, file names shown back to people).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace sluice {

// Whether `s` is well-formed UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF).
bool IsValidUtf8(std::string_view s);
// The offset of the first byte that does not start a valid UTF-8 sequence, or npos.
size_t FirstInvalidUtf8(std::string_view s);

// `s` with every byte that is not part of well-formed UTF-8 replaced by U+FFFD: for text
// shown back (error messages quoting a path, a file name in a listing).
std::string ValidUtf8(std::string_view s);

// `s` fit for one line of a log: control characters (a newline in a file name, a terminal's
// escape sequence) written as \xNN, bytes that are not UTF-8 as U+FFFD. `s` itself when it
// is fit already.
std::string PrintableLine(std::string_view s);

// `s` cut to at most `max_bytes` (at a UTF-8 character's start) with how much was left out
// said at its end: for a message that may quote what it was given (an error naming a
// 20 MB property name is stored, logged and reported, each time whole).
constexpr size_t kMaxMessageBytes = 4096;
std::string Shortened(std::string s, size_t max_bytes = kMaxMessageBytes);

// `bytes` in lower-case hex, two digits a byte (digests, random tokens).
std::string HexBytes(std::string_view bytes);

// A list of strings as Python 3's repr() writes it ("['/bin/echo', \"it's\"]"): what
// command_runner writes in its "Running" lines.
std::string PythonRepr(const std::vector<std::string>& list);

// A name or id given by a user: 1 to `max_bytes` bytes of UTF-8 without control characters
// (C0, DEL, C1). InvalidArgument naming `what` otherwise.
constexpr size_t kMaxNameBytes = 255;
Status CheckName(std::string_view what, std::string_view s, size_t max_bytes = kMaxNameBytes);

}  // namespace sluice
