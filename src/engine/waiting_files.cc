// WaitingFiles: names in blocks, a heap by age and an open-addressing index by name.
#include "engine/waiting_files.h"

#include <algorithm>
#include <functional>

namespace sluice {

bool WaitingFiles::Older(uint32_t a, uint32_t b) const {
  const Entry& x = entries_[a];
  const Entry& y = entries_[b];
  if (x.mtime_ns != y.mtime_ns) return x.mtime_ns > y.mtime_ns;
  return NameOf(a) > NameOf(b);
}

size_t WaitingFiles::Slot(std::string_view name) const {
  size_t mask = index_.size() - 1;
  size_t i = std::hash<std::string_view>()(name) & mask;
  while (index_[i] != 0 && NameOf(index_[i] - 1) != name) i = (i + 1) & mask;
  return i;
}

void WaitingFiles::Grow() {
  std::vector<uint32_t> old = std::move(index_);
  index_.assign(std::max<size_t>(1024, old.size() * 2), 0);
  for (uint32_t v : old) {
    if (v != 0 && entries_[v - 1].live) index_[Slot(NameOf(v - 1))] = v;
  }
}

bool WaitingFiles::Add(int64_t mtime_ns, std::string_view name) {
  if (name.empty() || name.size() > UINT16_MAX) return false;
  // Kept under half full (dead entries count until the next compaction).
  if ((entries_.size() + 1) * 2 > index_.size()) {
    if (entries_.size() > 2 * live_ + 1024) Compact();
    if ((entries_.size() + 1) * 2 > index_.size()) Grow();
  }
  size_t slot = Slot(name);
  if (index_[slot] != 0) {
    Entry& e = entries_[index_[slot] - 1];
    if (e.live) return false;
    // Taken or removed earlier and back again: a fresh entry, the old one stays dead.
  }
  if (blocks_.size() >= (size_t{1} << (32 - kBlockBits)) - 1) return false;  // 4 GiB of names
  auto i = static_cast<uint32_t>(entries_.size());
  entries_.push_back(Entry{mtime_ns, Store(name), static_cast<uint16_t>(name.size()), true});
  index_[slot] = i + 1;
  heap_.push_back(i);
  std::push_heap(heap_.begin(), heap_.end(),
                 [this](uint32_t a, uint32_t b) { return Older(a, b); });
  live_++;
  return true;
}

uint32_t WaitingFiles::Store(std::string_view name) {
  constexpr size_t kBlock = size_t{1} << kBlockBits;
  if (blocks_.empty() || blocks_.back().size() + name.size() > kBlock) {
    blocks_.emplace_back();
    blocks_.back().reserve(kBlock);
  }
  std::string& b = blocks_.back();
  auto offset = static_cast<uint32_t>(((blocks_.size() - 1) << kBlockBits) | b.size());
  b.append(name);
  return offset;
}

bool WaitingFiles::Contains(std::string_view name) const {
  if (index_.empty()) return false;
  uint32_t v = index_[Slot(name)];
  return v != 0 && entries_[v - 1].live;
}

bool WaitingFiles::Remove(std::string_view name) {
  if (index_.empty()) return false;
  uint32_t v = index_[Slot(name)];
  if (v == 0 || !entries_[v - 1].live) return false;
  entries_[v - 1].live = false;  // its heap slot is dropped when it reaches the top
  live_--;
  return true;
}

void WaitingFiles::DropDeadTop() {
  auto older = [this](uint32_t a, uint32_t b) { return Older(a, b); };
  while (!heap_.empty() && !entries_[heap_.front()].live) {
    std::pop_heap(heap_.begin(), heap_.end(), older);
    heap_.pop_back();
  }
}

std::vector<std::string> WaitingFiles::TakeOldest(size_t n) {
  std::vector<std::string> out;
  auto older = [this](uint32_t a, uint32_t b) { return Older(a, b); };
  while (out.size() < n) {
    DropDeadTop();
    if (heap_.empty()) break;
    uint32_t i = heap_.front();
    std::pop_heap(heap_.begin(), heap_.end(), older);
    heap_.pop_back();
    out.emplace_back(NameOf(i));
    entries_[i].live = false;
    live_--;
  }
  if (live_ == 0) {
    *this = WaitingFiles();  // a drained backlog gives its memory back
  } else if (entries_.size() > 2 * live_ + 1024) {
    Compact();
  }
  return out;
}

int64_t WaitingFiles::OldestMtime() {
  DropDeadTop();
  return heap_.empty() ? 0 : entries_[heap_.front()].mtime_ns;
}

void WaitingFiles::Compact() {
  WaitingFiles live;
  for (uint32_t i = 0; i < entries_.size(); ++i) {
    if (!entries_[i].live) continue;
    live.entries_.push_back(
        Entry{entries_[i].mtime_ns, live.Store(NameOf(i)), entries_[i].length, true});
  }
  live.live_ = live.entries_.size();
  live.heap_.resize(live.entries_.size());
  for (uint32_t i = 0; i < live.heap_.size(); ++i) live.heap_[i] = i;
  std::make_heap(live.heap_.begin(), live.heap_.end(),
                 [&live](uint32_t a, uint32_t b) { return live.Older(a, b); });
  live.index_.assign(index_.size(), 0);
  for (uint32_t i = 0; i < live.entries_.size(); ++i) {
    live.index_[live.Slot(live.NameOf(i))] = i + 1;
  }
  *this = std::move(live);
}

}  // namespace sluice
