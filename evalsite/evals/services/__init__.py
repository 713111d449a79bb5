"""Write services of the eval app (HackSoft style: keyword-only, own their transactions)."""
