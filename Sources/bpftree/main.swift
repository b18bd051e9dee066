import BPFTreeCommands

BPFTreeCommand.main()
