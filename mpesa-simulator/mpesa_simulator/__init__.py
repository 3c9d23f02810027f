"""A local Daraja (M-Pesa Express) simulator: a development tool, not production code.

It answers OAuth, STK Push and STK Query as Safaricom's sandbox does (same paths, same
fields, same error shapes), checks the Password and Timestamp the way Daraja does, and
POSTs the STK callback to the CallBackURL a moment later. The outcome is chosen by the
phone number (see TEST_NUMBERS), so a whole M-Pesa checkout runs offline.
"""
