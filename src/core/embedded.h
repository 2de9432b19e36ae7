// Data files compiled into the binary (schemas, the default trees file); see cmake/embed.cmake.
#pragma once

#include <optional>
#include <string_view>

namespace sluice {

// The contents of the embedded file at `path` (relative to the source tree, e.g.
// "data/kcidb/trees.yml"), or nullopt when no such file was embedded.
std::optional<std::string_view> EmbeddedFile(std::string_view path);

}  // namespace sluice
