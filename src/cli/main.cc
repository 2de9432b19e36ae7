// sluice: the command-line entry point; see cli/commands.h.
#include "cli/commands.h"

int main(int argc, char** argv) { return sluice::cli::Main(argc, argv); }
