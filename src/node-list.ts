// An intrusive doubly-linked list: the links live in the items, so moving an item to the tail
// (what every heartbeat does) allocates nothing and costs O(1).

export interface Linked<T extends Linked<T>> {
  prev: T | null;
  next: T | null;
  list: NodeList<T> | null;
}

export class NodeList<T extends Linked<T>> {
  head: T | null = null;
  tail: T | null = null;
  size = 0;

  push(item: T): void {
    if (item.list !== null) item.list.remove(item);
    item.list = this;
    item.prev = this.tail;
    item.next = null;
    if (this.tail === null) this.head = item;
    else this.tail.next = item;
    this.tail = item;
    this.size++;
  }

  remove(item: T): void {
    if (item.list !== this) return;
    if (item.prev === null) this.head = item.next;
    else item.prev.next = item.next;
    if (item.next === null) this.tail = item.prev;
    else item.next.prev = item.prev;
    item.prev = item.next = null;
    item.list = null;
    this.size--;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (let item = this.head; item !== null; item = item.next) yield item;
  }
}
