"""User administration (admins): list, create, deactivate and reactivate accounts, end their sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, HTTPException, Request, status
from psycopg import AsyncConnection, errors
from pydantic import BaseModel, ConfigDict, Field

from ioc.api.accounts import UserDirectory
from ioc.api.deps import ConnDep, UserAdmin
from ioc.api.security import Principal
from ioc.storage.audit import append_audit
from ioc.storage.users import MIN_PASSWORD_LENGTH, create_user, end_sessions, list_users, set_active

router = APIRouter(prefix="/api/users", tags=["users"])

RoleName = Literal["officer", "operator", "supervisor", "auditor", "admin"]


class UserPublic(BaseModel):
    username: str
    role: str
    active: bool
    created_at: datetime
    updated_at: datetime

    model_config = ConfigDict(from_attributes=True)  # built from a stored User: these fields only


class UserCreate(BaseModel):
    username: str = Field(pattern=r"^[A-Za-z0-9._@-]{1,64}$")
    role: RoleName
    password: str = Field(min_length=MIN_PASSWORD_LENGTH, max_length=256)


@router.get("", response_model=list[UserPublic])
async def users(conn: ConnDep, _: UserAdmin) -> list[UserPublic]:
    return [UserPublic.model_validate(u) for u in await list_users(conn)]


@router.post("", response_model=UserPublic, status_code=status.HTTP_201_CREATED)
async def create(body: UserCreate, conn: ConnDep, admin: UserAdmin) -> UserPublic:
    try:
        async with conn.transaction():
            user = await create_user(conn, body.username, body.role, body.password)
            await append_audit(conn, actor=admin.username, role=admin.role, action="user.create",
                               query={"username": body.username, "role": body.role},
                               purpose="user administration", result_count=1)
    except errors.UniqueViolation as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, "username taken") from exc
    return UserPublic.model_validate(user)


async def _set_active(
    request: Request, conn: AsyncConnection, admin: Principal, username: str, active: bool
) -> None:
    async with conn.transaction():
        if not await set_active(conn, username, active):
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such user")
        await append_audit(conn, actor=admin.username, role=admin.role,
                           action="user.activate" if active else "user.deactivate",
                           query={"username": username}, purpose="user administration", result_count=1)
    directory: UserDirectory = request.app.state.users
    directory.forget(username)


_NO_SUCH_USER = {404: {"description": "no such user"}}


@router.post("/{username}/deactivate", status_code=status.HTTP_204_NO_CONTENT, responses=_NO_SUCH_USER,
             summary="Block sign-in and existing tokens (other API processes: within 30 s)")
async def deactivate(username: str, request: Request, conn: ConnDep, admin: UserAdmin) -> None:
    await _set_active(request, conn, admin, username, False)


@router.post("/{username}/activate", status_code=status.HTTP_204_NO_CONTENT, responses=_NO_SUCH_USER)
async def activate(username: str, request: Request, conn: ConnDep, admin: UserAdmin) -> None:
    await _set_active(request, conn, admin, username, True)


@router.post("/{username}/sign-out", status_code=status.HTTP_204_NO_CONTENT, responses=_NO_SUCH_USER,
             summary="End every session of a user, who may sign in again (a lost handheld; other API "
                     "processes: within 30 s)")
async def sign_out_user(username: str, request: Request, conn: ConnDep, admin: UserAdmin) -> None:
    async with conn.transaction():
        if not await end_sessions(conn, username):
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such user")
        await append_audit(conn, actor=admin.username, role=admin.role, action="user.sign_out",
                           query={"username": username}, purpose="user administration", result_count=1)
    directory: UserDirectory = request.app.state.users
    directory.forget(username)
