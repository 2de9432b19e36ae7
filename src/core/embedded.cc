// Lookup in the generated table of embedded files.
#include "core/embedded.h"

#include <cstddef>

namespace sluice {
namespace embedded {
struct Entry {
  std::string_view path;
  std::string_view data;
};
extern const Entry kEntries[];
extern const std::size_t kEntryCount;
}  // namespace embedded

std::optional<std::string_view> EmbeddedFile(std::string_view path) {
  for (std::size_t i = 0; i < embedded::kEntryCount; ++i) {
    if (embedded::kEntries[i].path == path) return embedded::kEntries[i].data;
  }
  return std::nullopt;
}

}  // namespace sluice
