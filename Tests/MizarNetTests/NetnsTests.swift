import Foundation
import MizarNet
import MizarTestSupport
import Testing

private func threadNetnsInode() -> UInt64 {
    var st = stat()
    stat("/proc/thread-self/ns/net", &st)
    return UInt64(st.st_ino)
}

@Suite("Network namespaces")
struct NetnsTests {
    @Test func createOpenInEveryFormAndDelete() throws {
        let name = uniquePrefix()
        let ns = try Netns.create(named: name)
        defer { _ = try? Netns.delete(named: name) }
        #expect(ns.path == "/run/netns/\(name)")
        #expect(try Netns(name).identity == ns.identity)
        #expect(try Netns("/var/run/netns/\(name)").identity == ns.identity)
        #expect(try Netns("/proc/self/ns/net").identity == Netns.host.identity)
        #expect(try ns.identity != Netns.host.identity)
        #expect { try Netns.create(named: name) } throws: { ($0 as? NetError)?.code == .exists }
        #expect(try Netns.delete(named: name))
        #expect(try !Netns.delete(named: name))
        #expect { try Netns(name) } throws: { ($0 as? NetError)?.code == .notFound }
    }

    @Test func badPathsAreRejected() {
        #expect { try Netns("/proc/999999999/ns/net") } throws: { ($0 as? NetError)?.code == .notFound }
        #expect { try Netns("/etc/hostname") } throws: { ($0 as? NetError)?.code == .invalidArgument }
        #expect { try Netns.create(named: "a/b") } throws: { ($0 as? NetError)?.code == .invalidArgument }
    }

    @Test func performNeverLeaksIntoOtherThreads() throws {
        let name = uniquePrefix()
        let ns = try Netns.create(named: name)
        defer { _ = try? Netns.delete(named: name) }
        let before = threadNetnsInode()
        let inside = try ns.perform { threadNetnsInode() }
        #expect(inside == (try ns.identity.ino))
        #expect(inside != before)
        #expect(threadNetnsInode() == before)
        // Many concurrent switches, and no thread of the pool ends up elsewhere.
        DispatchQueue.concurrentPerform(iterations: 16) { _ in _ = try? ns.perform { threadNetnsInode() } }
        let hostIno = try Netns.host.identity.ino
        var strays = 0
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: 64) { _ in
            if threadNetnsInode() != hostIno { lock.lock(); strays += 1; lock.unlock() }
        }
        #expect(strays == 0)
    }
}
