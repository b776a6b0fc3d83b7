"""A writer process for the store's fault tests: appends items one commit at a time.

Usage: python writer.py URL CONVERSATION TAG COUNT. After each commit it prints the number of
items committed so far and flushes, so a parent that kills it knows what must have survived.
"""

import sys

from context_manager import Message
from context_manager.store import Store

url, conversation, tag, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
store = Store(url, migrate=False)
for n in range(count):
    store.append(conversation, [Message(role="user", text=f"{tag} {n}")])
    print(n + 1, flush=True)
store.close()
