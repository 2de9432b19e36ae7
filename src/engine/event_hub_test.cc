#include "engine/event_hub.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

Event Ev(int64_t id, int64_t job, std::string type = "job.queued") {
  Event e;
  e.id = id;
  e.job_id = job;
  e.queue = "default";
  e.kind = "kcidb";
  e.type = std::move(type);
  return e;
}

TEST(EventHub, DeliversMatchingEventsInOrderAndWakesOncePerBatch) {
  EventHub hub;
  int wakes = 0;
  EventFilter f;
  f.job_id = 7;
  auto sub = hub.Subscribe(f, 100, [&] { ++wakes; });
  hub.Publish({Ev(1, 7), Ev(2, 8), Ev(3, 7, "job.running")});
  hub.Publish({Ev(4, 7, "job.succeeded")});
  EXPECT_EQ(wakes, 1);  // not taken in between: one wake is enough
  bool lagged = true;
  auto got = sub->Take(&lagged);
  EXPECT_FALSE(lagged);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0]->id, 1);
  EXPECT_EQ(got[1]->id, 3);
  EXPECT_EQ(got[2]->id, 4);
  hub.Publish({Ev(5, 7)});
  EXPECT_EQ(wakes, 2);
}

TEST(EventHub, AFullQueueMarksTheSubscriberLaggedAndKeepsWhatCameBefore) {
  EventHub hub;
  auto sub = hub.Subscribe(EventFilter{}, 2, [] {});
  hub.Publish({Ev(1, 1), Ev(2, 1), Ev(3, 1), Ev(4, 1)});
  bool lagged = false;
  auto got = sub->Take(&lagged);
  EXPECT_TRUE(lagged);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1]->id, 2);
  EXPECT_EQ(hub.lagged(), 1u);
  hub.Publish({Ev(5, 1)});
  EXPECT_TRUE(sub->Take(&lagged).empty());  // stays lagged until Reset
  sub->Reset();
  hub.Publish({Ev(6, 1)});
  EXPECT_EQ(sub->Take(&lagged).size(), 1u);
  EXPECT_FALSE(lagged);
}

TEST(EventHub, ManyReadersShareOneWindowAndTakeInChunks) {
  EventHub hub([](const Event& e) { return "id: " + std::to_string(e.id) + "\n\n"; }, 100);
  std::vector<std::shared_ptr<EventHub::Subscription>> subs;
  for (int i = 0; i < 50; ++i) subs.push_back(hub.Subscribe(EventFilter{}, 100, [] {}));
  std::vector<Event> batch;
  for (int i = 1; i <= 60; ++i) batch.push_back(Ev(i, 1));
  hub.Publish(batch);
  bool lagged = false;
  auto a = subs[0]->Take(&lagged, 25);
  auto b = subs[1]->Take(&lagged, 100);
  ASSERT_EQ(a.size(), 25u);
  ASSERT_EQ(b.size(), 60u);
  EXPECT_EQ(a[0].get(), b[0].get());  // the same event, not a copy
  ASSERT_NE(a[0]->wire, nullptr);
  EXPECT_EQ(*a[0]->wire, "id: 1\n\n");  // encoded once, by the hub
  EXPECT_EQ(subs[0]->Take(&lagged, 100).front()->id, 26);
  EXPECT_FALSE(lagged);
}

TEST(EventHub, AReaderLeftBehindTheWindowIsLagged) {
  EventHub hub(nullptr, 10);
  auto slow = hub.Subscribe(EventFilter{}, 1000, [] {});  // capped at the window, 10
  std::vector<Event> batch;
  for (int i = 1; i <= 30; ++i) batch.push_back(Ev(i, 1));
  hub.Publish(batch);
  bool lagged = false;
  slow->Take(&lagged);
  EXPECT_TRUE(lagged);
}

TEST(EventHub, ASubscriptionEndsWithItsLastReference) {
  EventHub hub;
  auto sub = hub.Subscribe(EventFilter{}, 10, [] {});
  EXPECT_EQ(hub.subscribers(), 1u);
  sub.reset();
  hub.Publish({Ev(1, 1)});
  EXPECT_EQ(hub.subscribers(), 0u);
}

TEST(EventHub, WithoutReadersEventsAreCountedNotEncodedAndALaterReaderStartsAfterThem) {
  int encoded = 0;
  EventHub hub([&](const Event& e) {
    ++encoded;
    return "id: " + std::to_string(e.id) + "\n\n";
  });
  hub.Publish({Ev(1, 1), Ev(2, 1)});
  EXPECT_EQ(hub.published(), 2u);
  EXPECT_EQ(encoded, 0);  // nobody could take them (a new reader reads them from the store)
  auto sub = hub.Subscribe(EventFilter{}, 10, [] {});
  hub.Publish({Ev(3, 1)});
  bool lagged = true;
  auto got = sub->Take(&lagged);
  EXPECT_FALSE(lagged);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0]->id, 3);
  ASSERT_TRUE(got[0]->wire);
  EXPECT_EQ(*got[0]->wire, "id: 3\n\n");
  EXPECT_EQ(encoded, 1);
  EXPECT_EQ(hub.published(), 3u);
}

}  // namespace
}  // namespace sluice
