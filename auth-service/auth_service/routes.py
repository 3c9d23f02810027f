"""HTTP in, HTTP out: the auth service's routes (the original's contract, plus admin user
management and password change)."""

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response, status

from auth_service import accounts
from auth_service.dependencies import CurrentUserRecord, CurrentUserView, State, ValidUser
from auth_service.schemas import (
    AdminUserUpdate,
    AuthResponse,
    ChangePasswordRequest,
    Jwks,
    LoginRequest,
    MessageWithUser,
    PasswordChanged,
    ProfileUpdate,
    RegisterRequest,
    UserEnvelope,
    UserList,
    UserOut,
    UserStatusEnvelope,
    UserStatusOut,
    VerifiedClaims,
    VerifyResponse,
)
from shared.auth import AdminUser, DocumentedBearer, InternalCaller, authenticate, bearer_token
from shared.db import SessionDep
from shared.errors import Unauthorized
from shared.keys import jwks
from shared.openapi import errors
from shared.schemas import PageDep

router = APIRouter(prefix="/api", tags=["auth"])
admin_router = APIRouter(prefix="/api/admin", tags=["admin"])
internal_router = APIRouter(prefix="/api/internal", tags=["internal"])
well_known_router = APIRouter(prefix="/.well-known", tags=["auth"])
# Others may keep the keys this long; a rotation publishes the new key before it signs
# anything (docs/operations.md), and an unknown kid makes them ask again anyway.
JWKS_MAX_AGE = 300


@well_known_router.get("/jwks.json", response_model=Jwks)
async def json_web_key_set(state: State, response: Response) -> dict[str, list[dict[str, str]]]:
    """The public keys user tokens are verified with (RFC 7517), the signing key first; a
    token's `kid` names one of them (its RFC 7638 thumbprint)."""
    response.headers["Cache-Control"] = f"public, max-age={JWKS_MAX_AGE}"
    return jwks(list(state.settings.jwt_public_keys.values()))


@router.post("/register", status_code=status.HTTP_201_CREATED, response_model=AuthResponse)
async def register(data: RegisterRequest, session: SessionDep, state: State) -> AuthResponse:
    user, token = await accounts.register(session, data, state.settings)
    return AuthResponse(message="User registered successfully", token=token, user=user)


@router.post(
    "/login",
    response_model=AuthResponse,
    responses=errors((401, "Invalid credentials"), (403, "Account is deactivated")),
)
async def login(data: LoginRequest, session: SessionDep, state: State) -> AuthResponse:
    user, token = await accounts.login(session, data.email, data.password, state.settings)
    return AuthResponse(message="Login successful", token=token, user=user)


@router.get("/profile", response_model=UserEnvelope)
async def get_profile(user: CurrentUserView) -> UserEnvelope:
    return UserEnvelope(user=user)


@router.put("/profile", response_model=MessageWithUser)
async def update_profile(
    data: ProfileUpdate, user: CurrentUserRecord, session: SessionDep
) -> MessageWithUser:
    user = await accounts.update_profile(session, user, data)
    return MessageWithUser(message="Profile updated successfully", user=user)


@router.post("/change-password", response_model=PasswordChanged)
async def change_password(
    data: ChangePasswordRequest, user: CurrentUserRecord, session: SessionDep, state: State
) -> PasswordChanged:
    token = await accounts.change_password(session, user, data, state.settings)
    return PasswordChanged(message="Password changed successfully", token=token)


@router.post(
    "/verify",
    response_model=VerifyResponse,
    responses=errors((401, "No token, or one that is not valid (any more)")),
)
async def verify(request: Request, state: State, _: DocumentedBearer = None) -> VerifyResponse:
    """The original's token check: the claims of a valid token whose user exists and is active."""
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("No token provided")
    user = await authenticate(token, keys=state.user_token_keys, user_status=state.user_status)
    claims = await state.user_token_keys.decode(token)  # valid: authenticate() accepted it
    return VerifyResponse(
        user=VerifiedClaims(
            id=user.id,
            email=user.email,
            role=user.role,
            iat=claims.issued_at,
            exp=claims.expires_at,
        )
    )


@admin_router.get("/users", response_model=UserList)
async def list_users(
    admin: AdminUser,
    session: SessionDep,
    page: PageDep,
    role: Literal["customer", "admin"] | None = None,
    is_active: Annotated[bool | None, Query(alias="isActive")] = None,
    search: Annotated[
        str | None,
        Query(
            max_length=200,
            pattern=r"^[^\x00-\x1f]*$",
            description="Part of the name or email, any case.",
        ),
    ] = None,
) -> UserList:
    users, total = await accounts.list_users(
        session,
        role=role,
        is_active=is_active,
        search=search.strip() if search else None,
        page=page,
    )
    return UserList(
        users=[UserOut.model_validate(u) for u in users],
        total_pages=page.total_pages(total),
        current_page=page.page,
        total_users=total,
    )


@admin_router.get("/users/{user_id}", response_model=UserEnvelope)
async def get_user(admin: AdminUser, user: ValidUser) -> UserEnvelope:
    return UserEnvelope(user=user)


@admin_router.put("/users/{user_id}", response_model=MessageWithUser)
async def update_user(
    changes: AdminUserUpdate, user: ValidUser, admin: AdminUser, session: SessionDep
) -> MessageWithUser:
    user = await accounts.update_user_as_admin(session, admin, user, changes)
    return MessageWithUser(message="User updated successfully", user=user)


@internal_router.get(
    "/users/{user_id}", response_model=UserStatusEnvelope, responses=errors((404, "User not found"))
)
async def user_status(
    user_id: uuid.UUID, caller: InternalCaller, session: SessionDep
) -> UserStatusEnvelope:
    """What other services' user status caches are filled from."""
    status_ = await accounts.user_status(session, user_id)
    return UserStatusEnvelope(
        user=UserStatusOut(
            id=user_id,
            role=status_.role,
            is_active=status_.is_active,
            tokens_valid_after=status_.tokens_valid_after,
        )
    )
