"""Member links that wait for their member.

A purchase line whose loyalty card is not yet in the member file is stored with member_id NULL (the
sale counts for demand at once); its link to the card waits in `pending_member_links`. When the member
arrives, `attach_pending_member_links` sets the line's member_id and deletes the pending row, so the
member counts for favourites like any other. Portable SQL (correlated subqueries, no UPDATE ... FROM):
the same statements on SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import Connection, and_, exists, select, update

from sql import schema


def attach_pending_member_links(conn: Connection) -> int:
    """Attach every pending link whose member now exists; returns how many lines got their member.
    Idempotent: a second call finds nothing to attach."""
    lines, pending, members = schema.purchase_lines, schema.pending_member_links, schema.members
    same_line = and_(
        pending.c.store_id == lines.c.store_id,
        pending.c.receipt_id == lines.c.receipt_id,
        pending.c.line_no == lines.c.line_no,
    )
    member_known = exists().where(members.c.member_id == pending.c.member_id)
    ready = select(pending.c.member_id).where(same_line, member_known).scalar_subquery()
    attached = conn.execute(
        update(lines)
        .where(lines.c.member_id.is_(None), exists().where(same_line, member_known))
        .values(member_id=ready)
    ).rowcount
    # a link is done once its line carries that member (a line holding another member keeps its link
    # waiting, for a person or for retention, rather than being overwritten)
    done = exists().where(same_line, lines.c.member_id == pending.c.member_id)
    conn.execute(pending.delete().where(done))
    return attached


def waiting_links(conn: Connection, links: list[dict]) -> int:
    """How many of these links (rows of pending_member_links) still wait for their member."""
    if not links:
        return 0
    ids = sorted({link["member_id"] for link in links})
    known: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        known |= set(
            conn.execute(select(schema.members.c.member_id).where(schema.members.c.member_id.in_(chunk))).scalars()
        )
    return sum(link["member_id"] not in known for link in links)
