// spdlog, for every file that logs. Include this instead of <spdlog/spdlog.h>.
//
// spdlog 1.10 formats each message with fmt::detail::vformat_to<char>, a template it would
// compile into every file that logs: about 8 s of the compiler's time per file at -O2 (a file
// with one spdlog::info call took 11.6 s, 2.7 s with this). libfmt already exports that
// instantiation, so the files take it from there. GCC only: clang mangles that function's
// signature differently from the GCC-built libfmt (the `make fuzz` build would not link), so
// under clang every file compiles its own again.
#pragma once

#include <fmt/format.h>

#if FMT_VERSION >= 90000 && FMT_VERSION < 100000 && !defined(FMT_HEADER_ONLY) && !defined(__clang__)
FMT_BEGIN_NAMESPACE
namespace detail {
extern template FMT_API void vformat_to<char>(
    buffer<char>&, basic_string_view<char>,
    basic_format_args<FMT_BUFFER_CONTEXT(type_identity_t<char>)>, locale_ref);
}  // namespace detail
FMT_END_NAMESPACE
#endif

#include <spdlog/spdlog.h>
