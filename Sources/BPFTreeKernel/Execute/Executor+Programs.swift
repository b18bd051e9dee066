import BPFTreeCore
import Glibc

/// Programs and links: programs are loaded with libbpf and pinned one by one; links are created in
/// batches by the syscall program (`BT_OP_LINK_CREATE`) and pinned; all where they are staged.
extension Executor {
    /// Loads the programs of `indices` (their maps bound to the declared pins, as staged), those of one
    /// object and declaration (`ProgramSpec.loadKey`) in one load, so they share the object's maps, and pins
    /// each where it is staged; refused when the object no longer gives the program that was planned.
    func makePrograms(_ plan: Plan, _ indices: [Int], into staging: inout Staging) throws(Failure) {
        var groups: [ProgramSpec.LoadKey: [(index: Int, program: ResolvedProgram, mode: UInt32, owner: Owner)]] = [:]
        var order: [ProgramSpec.LoadKey] = []
        for index in indices {
            switch plan.actions[index].change {
            case .createProgram(let program, let mode, let owner), .replaceProgram(let program, let mode, let owner, _):
                let key = program.spec.loadKey
                if groups[key] == nil { order.append(key) }
                groups[key, default: []].append((index, program, mode, owner))
            default: continue
            }
        }
        for key in order {
            guard let group = groups[key], let head = group.first else { continue }
            let loaded: [(Descriptor, tag: UInt64)]
            do throws(KernelError) {
                var maps: [(name: String, map: Descriptor)] = []
                for binding in head.program.spec.maps { maps.append((binding.name, try kernel.openPin(staging.location(of: binding.path)))) }
                loaded = try kernel.load(group.map(\.program.spec), maps: maps, path: plan.actions[head.index].path)
            } catch {
                throw Failure(action: head.index, error: error)
            }
            for (member, (descriptor, tag)) in zip(group, loaded) {
                let action = plan.actions[member.index]
                do throws(KernelError) {
                    if let planned = member.program.image, planned.tag != tag {
                        throw KernelError(.step(.loadProgram), path: action.path.description,
                                          detail: "\(member.program.spec.object) changed since it was planned (tag \(formatTag(tag)), planned \(planned.tagHex)); run apply again")
                    }
                    try pinStaged(descriptor, member.index, action, kind: .program, fingerprint: member.program.spec.fingerprint(tag: tag),
                                  mode: member.mode, owner: member.owner, into: &staging)
                } catch {
                    throw Failure(action: member.index, error: error)
                }
            }
        }
    }

    /// One link of a batch: what to pin once the program has run.
    private struct BatchedLink {
        var index: Int
        var link: ResolvedLink
        var mode: UInt32
        var owner: Owner
    }

    /// Creates the links of `indices` in batches of the syscall program and pins them where they are
    /// staged. Returns how many times it ran.
    func makeLinks(_ plan: Plan, _ indices: [Int], into staging: inout Staging) throws(Failure) -> Int {
        // Each link holds a program fd and perhaps a cgroup fd until the run.
        let limits = kernel.batchLimits
        let perRun = max(1, min(limits.maxOps, limits.maxMaps / 2))
        var runs = 0
        var batch: [BatchedLink] = []
        var ops: [LinkOp] = []
        // The programs links attach, each opened once (a thousand cgroups' links share two programs).
        var programs: [TreePath: Descriptor] = [:]

        func flush() throws(Failure) {
            guard let head = batch.first else { return }
            defer { batch.removeAll(); ops.removeAll() }
            let results: [BatchResult]
            do throws(KernelError) {
                results = try kernel.run(ops)
                guard results.count == ops.count else {
                    throw KernelError(.step(.batchProgram), path: plan.actions[head.index].path.description,
                                      detail: "\(results.count) results for \(ops.count) links")
                }
            } catch {
                throw Failure(action: head.index, error: error)
            }
            runs += 1
            ops.removeAll()
            for (made, result) in zip(batch, results) {
                let path = plan.actions[made.index].path
                do throws(KernelError) {
                    if case .refused(-ENOENT) = result, let relative = made.link.spec.relative {
                        throw KernelError(.bpf(.linkCreate, batch: true), path: path.description, negativeErrno: -ENOENT,
                                          detail: "'\(relative)' is not attached at \(made.link.spec.attachType.name) of interface \(made.link.spec.interface ?? "")")
                    }
                    let descriptor: Descriptor
                    do throws(KernelError) {
                        descriptor = try result.object(.bpf(.linkCreate, batch: true), path: path)
                    } catch {
                        guard case .cgroup = made.link.spec.target, case .refused(let errno) = result else { throw error }
                        throw error.adding(KernelError.capabilityHint(errno, needs: [.netAdmin], for: "attaching a program to a cgroup"))
                    }
                    try pinStaged(descriptor, made.index, plan.actions[made.index], kind: .link, fingerprint: made.link.fingerprint,
                                  mode: made.mode, owner: made.owner, into: &staging)
                } catch {
                    throw Failure(action: made.index, error: error)
                }
            }
        }

        for index in Self.positionOrder(plan, indices) {
            let action = plan.actions[index]
            let link: ResolvedLink, mode: UInt32, owner: Owner
            switch action.change {
            case .createLink(let l, let m, let o), .replaceLink(let l, let m, let o, _): (link, mode, owner) = (l, m, o)
            default: continue
            }
            // A tcx link placed next to a link of this batch needs that link's id: run the batch first.
            let relative = link.spec.relative
            if batch.count >= perRun { try flush() }
            if let relative, batch.contains(where: { plan.actions[$0.index].path == relative }) { try flush() }
            do throws(KernelError) {
                if case .replaceLink = action.change, link.spec.exclusive { detached.append(try kernel.detachLinkForSuccessor(action.path)) }
                ops.append(try linkOp(link, for: action.path, staging: staging, programs: &programs))
                batch.append(BatchedLink(index: index, link: link, mode: mode, owner: owner))
            } catch {
                throw Failure(action: index, error: error)
            }
        }
        try flush()
        return runs
    }

    /// The LINK_CREATE of `spec`: the program from its pin, and what its family attaches it to (checked to
    /// be what was planned).
    private func linkOp(_ link: ResolvedLink, for path: TreePath, staging: Staging,
                        programs: inout [TreePath: Descriptor]) throws(KernelError) -> LinkOp {
        let location = staging.location(of: link.spec.program)
        let program: Descriptor
        if let opened = programs[location] {
            program = opened
        } else {
            program = try kernel.openPin(location)
            programs[location] = program
        }
        return try link.spec.target.kernel.linkOp(link, program: program, at: path, LinkContext(kernel: kernel, location: staging.location(of:)))
    }

    /// `indices` with every tcx link after the link of this pass it is placed next to (positions do not
    /// form cycles: validation refuses them); otherwise in plan order.
    static func positionOrder(_ plan: Plan, _ indices: [Int]) -> [Int] {
        var byPath: [TreePath: Int] = [:]
        for index in indices { byPath[plan.actions[index].path] = index }
        func relative(_ index: Int) -> Int? {
            switch plan.actions[index].change {
            case .createLink(let link, _, _), .replaceLink(let link, _, _, _):
                return link.spec.relative.flatMap { byPath[$0] }
            default: return nil
            }
        }
        guard indices.contains(where: { relative($0) != nil }) else { return indices }
        var ordered: [Int] = [], placed: Set<Int> = []
        func place(_ index: Int, depth: Int) {
            guard !placed.contains(index), depth <= indices.count else { return }
            if let before = relative(index) { place(before, depth: depth + 1) }
            if placed.insert(index).inserted { ordered.append(index) }
        }
        for index in indices { place(index, depth: 0) }
        return ordered
    }
}
