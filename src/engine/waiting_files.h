// WaitingFiles: the spool files seen while the backlog was full, by age, in little memory.
//
// A spool can hold millions of files when the daemon starts (an ingester that was down for
// a day); only max_backlog of them are registered, the rest wait here until there is room,
// oldest first. Each costs its name's bytes plus about 28 (names in blocks, a heap of
// indices, an open-addressing index by name), not the 150 or so of a std::set node and a
// std::unordered_set node of std::string.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

class WaitingFiles {
 public:
  // Adds `name` with its age; false (and nothing changes) when it is already here.
  bool Add(int64_t mtime_ns, std::string_view name);
  bool Contains(std::string_view name) const;
  // Forgets `name`, if here; true when it was.
  bool Remove(std::string_view name);
  // Takes up to `n` names, oldest first (ties by name).
  std::vector<std::string> TakeOldest(size_t n);

  size_t size() const { return live_; }
  bool empty() const { return live_ == 0; }
  // The oldest one's mtime (0 when empty).
  int64_t OldestMtime();

 private:
  struct Entry {
    int64_t mtime_ns;
    uint32_t offset;  // block << kBlockBits | position in it
    uint16_t length;
    bool live;
  };
  static constexpr int kBlockBits = 20;  // names are kept in blocks of 1 MiB
  std::string_view NameOf(uint32_t i) const {
    const Entry& e = entries_[i];
    return {blocks_[e.offset >> kBlockBits].data() + (e.offset & ((1u << kBlockBits) - 1)),
            e.length};
  }
  uint32_t Store(std::string_view name);     // into blocks_; its offset
  bool Older(uint32_t a, uint32_t b) const;  // heap order: a after b
  // The slot of `name` in index_, or of the empty slot where it would go.
  size_t Slot(std::string_view name) const;
  void Grow();
  void Compact();
  void DropDeadTop();

  // Blocks and a deque, not one growing string and vector: growing those copies them and
  // leaves the old buffer behind, half again of what they hold.
  std::vector<std::string> blocks_;
  std::deque<Entry> entries_;
  std::vector<uint32_t> heap_;   // entry indices, a min-heap by (mtime, name)
  std::vector<uint32_t> index_;  // entry index + 1; 0: empty; size a power of two
  size_t live_ = 0;
};

}  // namespace sluice
