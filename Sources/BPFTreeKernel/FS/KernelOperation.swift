/// What failed, as a `KernelError` names it: a `bpf(2)` command (run directly or by the batch program), a
/// system call, or one of bpftree's own steps. Its description is the text errors print.
public enum KernelOperation: Hashable, Sendable, CustomStringConvertible {
    /// A `bpf(2)` command; `batch`: run by the batch program (`bpf_sys_bpf`); `entry`: the declared
    /// contents' entry an update wrote.
    case bpf(BPFCommand, batch: Bool = false, entry: Int? = nil)
    case call(SystemCall)
    case step(Step)

    /// `bpf(2)` commands, by their kernel names.
    public enum BPFCommand: String, Sendable {
        case mapCreate = "BPF_MAP_CREATE"
        case mapLookupElem = "BPF_MAP_LOOKUP_ELEM"
        case mapUpdateElem = "BPF_MAP_UPDATE_ELEM"
        case mapGetNextKey = "BPF_MAP_GET_NEXT_KEY"
        case mapLookupBatch = "BPF_MAP_LOOKUP_BATCH"
        case mapUpdateBatch = "BPF_MAP_UPDATE_BATCH"
        case mapDeleteBatch = "BPF_MAP_DELETE_BATCH"
        case mapFreeze = "BPF_MAP_FREEZE"
        case mapGetFDByID = "BPF_MAP_GET_FD_BY_ID"
        case objPin = "BPF_OBJ_PIN"
        case objGet = "BPF_OBJ_GET"
        case objGetInfoByFD = "BPF_OBJ_GET_INFO_BY_FD"
        case progGetNextID = "BPF_PROG_GET_NEXT_ID"
        case progGetFDByID = "BPF_PROG_GET_FD_BY_ID"
        case progQuery = "BPF_PROG_QUERY"
        case progTestRun = "BPF_PROG_TEST_RUN"
        case linkCreate = "BPF_LINK_CREATE"
        case linkDetach = "BPF_LINK_DETACH"
        case linkUpdate = "BPF_LINK_UPDATE"
        case tokenCreate = "BPF_TOKEN_CREATE"
    }

    /// System calls and libc functions, by their names.
    public enum SystemCall: String, Sendable {
        case open, openat2, opendir, read, getdents64, stat, fstat, fstatat, fstatfs, mkdirat, unlinkat, rmdir, fchmodat2, fchownat
        case flock, strdup
        case renameat2
        case renameNoReplace = "renameat2(RENAME_NOREPLACE)"
        case renameExchange = "renameat2(RENAME_EXCHANGE)"
        case ifNameToIndex = "if_nametoindex"
        case inotifyInit = "inotify_init1"
        case perfEventOpen = "perf_event_open"
    }

    /// bpftree's own steps.
    public enum Step: Hashable, Sendable, CustomStringConvertible {
        case openAnchor, useAnchor, lockAnchor, openAnchorForLocking, fstatAnchor, fstatfsAnchor, statxAnchor, openBPFFSRoot
        /// Opening the anchor's ledger, stamp or image cache (`ReservedMap.Role.what`).
        case openReserved(String)
        /// Making one of them.
        case createReserved(String)
        case createLedger, migrate
        case execute, batchProgram, loadBatchProgram
        case loadProgram, readObject, createLink, resolveLink, attachAgain, copyEntries
        case createToken, useToken
        case openCgroup, openCgroupDirectory, statCgroup, scanCgroups, findCgroupMount, openNetworkNamespace
        case findTracefs, findTracepoint, findRawTracepoint, findSymbol, findSymbols, findKernelFunction, findKernelFunctions, findFprobe
        /// A perf event source (`uprobe`, `kprobe`).
        case findPMU(String)
        /// A process or thread a link names.
        case findTask(String)

        public var description: String {
            switch self {
            case .openAnchor: "open anchor"
            case .useAnchor: "use anchor"
            case .lockAnchor: "lock anchor"
            case .openAnchorForLocking: "open anchor for locking"
            case .fstatAnchor: "fstat anchor"
            case .fstatfsAnchor: "fstatfs anchor"
            case .statxAnchor: "statx anchor"
            case .openBPFFSRoot: "open the root of the anchor's bpffs"
            case .openReserved(let what): "open \(what)"
            case .createReserved(let what): "create \(what) map"
            case .createLedger: "create ledger map"
            case .migrate: "migrate"
            case .execute: "execute"
            case .batchProgram: "batch program"
            case .loadBatchProgram: "load batch program"
            case .loadProgram: "load program"
            case .readObject: "read BPF object"
            case .createLink: "create link"
            case .resolveLink: "resolve link"
            case .attachAgain: "attach again"
            case .copyEntries: "copy entries"
            case .createToken: "create BPF token"
            case .useToken: "use BPF token"
            case .openCgroup: "open cgroup"
            case .openCgroupDirectory: "open cgroup directory"
            case .statCgroup: "stat cgroup"
            case .scanCgroups: "scan cgroups"
            case .findCgroupMount: "find cgroup v2 mount"
            case .openNetworkNamespace: "open network namespace"
            case .findTracefs: "find tracefs"
            case .findTracepoint: "find tracepoint"
            case .findRawTracepoint: "find raw tracepoint"
            case .findSymbol: "find symbol"
            case .findSymbols: "find symbols"
            case .findKernelFunction: "find kernel function"
            case .findKernelFunctions: "find kernel functions"
            case .findFprobe: "find fprobe"
            case .findPMU(let pmu): "find \(pmu) PMU"
            case .findTask(let noun): "find \(noun)"
            }
        }
    }

    public var description: String {
        switch self {
        case .bpf(let command, let batch, let entry):
            "\(command.rawValue)\(entry.map { " contents[\($0)]" } ?? "")\(batch ? " (batch program)" : "")"
        case .call(let call): call.rawValue
        case .step(let step): step.description
        }
    }
}
