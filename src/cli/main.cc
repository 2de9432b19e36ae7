// sluice: the command-line entry point; see cli/commands.h.
#include "cli/commands.h"
#include "core/allocator.h"

int main(int argc, char** argv) {
  sluice::TuneAllocator();
  return sluice::cli::Main(argc, argv);
}
