// sluice: the command-line entry point; see cli/commands.h.
#include "cli/commands.h"
#include "core/allocator.h"
#include "core/limits.h"

int main(int argc, char** argv) {
  sluice::TuneAllocator();
  sluice::RaiseDescriptorLimit();
  return sluice::cli::Main(argc, argv);
}
