import NIOCore
import SharedTestData
import Testing

@testable import PortcullisProxy

@Suite("DeadlineHeap")
struct DeadlineHeapTests {
    final class Element: DeadlineHeapElement {
        let id: Int
        var deadlineSlot = DeadlineHeapSlot()
        init(_ id: Int) { self.id = id }
    }

    private static func at(_ nanos: Int64) -> NIODeadline { .uptimeNanoseconds(UInt64(nanos)) }

    @Test func popsDueElementsEarliestFirstAndLeavesTheRest() {
        var heap = DeadlineHeap<Element>()
        let elements = (0..<6).map(Element.init)
        for (element, nanos) in zip(elements, [50, 10, 40, 30, 60, 20] as [Int64]) {
            heap.set(Self.at(nanos), for: element)
        }
        #expect(heap.earliest == Self.at(10))
        var popped: [Int] = []
        while let element = heap.popDue(at: Self.at(40)) { popped.append(element.id) }
        #expect(popped == [1, 5, 3, 2])
        #expect(heap.count == 2)
        #expect(heap.earliest == Self.at(50))
        #expect(elements[1].deadlineSlot.index == -1)
        #expect(heap.deadline(of: elements[4]) == Self.at(60))
    }

    @Test func settingAgainMovesTheDeadlineEitherWay() {
        var heap = DeadlineHeap<Element>()
        let a = Element(0), b = Element(1), c = Element(2)
        heap.set(Self.at(10), for: a)
        heap.set(Self.at(20), for: b)
        heap.set(Self.at(30), for: c)
        heap.set(Self.at(40), for: a)
        #expect(heap.earliest == Self.at(20))
        heap.set(Self.at(5), for: c)
        #expect(heap.earliest == Self.at(5))
        #expect(heap.count == 3)
        #expect(heap.popDue(at: Self.at(100)) === c)
        #expect(heap.popDue(at: Self.at(100)) === b)
        #expect(heap.popDue(at: Self.at(100)) === a)
        #expect(heap.popDue(at: Self.at(100)) == nil)
    }

    @Test func removingAnElementWithoutADeadlineDoesNothing() {
        var heap = DeadlineHeap<Element>()
        let a = Element(0), b = Element(1)
        heap.set(Self.at(10), for: a)
        heap.remove(b)
        heap.remove(a)
        heap.remove(a)
        #expect(heap.count == 0)
        #expect(heap.earliest == nil)
    }

    /// Random sets, removes and pops against a plain dictionary, checking every slot after
    /// each step.
    @Test func agreesWithAModelOverRandomOperations() {
        var rng = SplitMix64(seed: 0x5eed)
        var heap = DeadlineHeap<Element>()
        let elements = (0..<64).map(Element.init)
        var model: [Int: Int64] = [:]
        for _ in 0..<20_000 {
            let element = elements[Int(rng.next() % 64)]
            switch rng.next() % 4 {
            case 0, 1:
                let nanos = Int64(rng.next() % 1_000)
                heap.set(Self.at(nanos), for: element)
                model[element.id] = nanos
            case 2:
                heap.remove(element)
                model[element.id] = nil
            default:
                let now = Int64(rng.next() % 1_000)
                let popped = heap.popDue(at: Self.at(now))
                let due = model.filter { $0.value <= now }
                if let popped {
                    #expect(model[popped.id] == due.values.min())
                    model[popped.id] = nil
                } else {
                    #expect(due.isEmpty)
                }
            }
            let wrong = elements.filter { heap.deadline(of: $0) != model[$0.id].map(Self.at) }.map(\.id)
            guard heap.count == model.count, heap.earliest == model.values.min().map(Self.at), wrong.isEmpty else {
                Issue.record("the heap left its model: count \(heap.count) vs \(model.count), wrong deadlines for \(wrong)")
                return
            }
        }
    }
}
