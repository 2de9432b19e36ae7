// RapidJSON's writer, always with its plain scan of the strings it writes.
//
// The build turns on RAPIDJSON_SSE2 for the reader's scans (CMakeLists.txt). RapidJSON 1.1.0
// (Debian 12's) then also scans strings being written 16 bytes at a time, and that scan takes
// only bytes below 0x1A for control characters: 0x1A-0x1F (ESC among them, as in a colored
// log line) were written raw, which is not JSON. This directory comes first on the include
// path, so every `#include <rapidjson/writer.h>` comes here and gets the writer without it.
#pragma once

#pragma push_macro("RAPIDJSON_SSE2")
#pragma push_macro("RAPIDJSON_SSE42")
#undef RAPIDJSON_SSE2
#undef RAPIDJSON_SSE42
#include_next <rapidjson/writer.h>
#pragma pop_macro("RAPIDJSON_SSE42")
#pragma pop_macro("RAPIDJSON_SSE2")
